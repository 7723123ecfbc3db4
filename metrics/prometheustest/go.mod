module github.com/affinitylb/affinity/metrics/prometheustest

go 1.26.0

require (
	github.com/affinitylb/affinity v0.0.0-00010101000000-000000000000
	github.com/prometheus/client_model v0.6.3
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/pandatix/go-abnf v0.5.3 // indirect
	github.com/prometheus/common v0.73.1
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sync v0.19.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/affinitylb/affinity => ../..
