module github.com/affinitylb/affinity

go 1.25
