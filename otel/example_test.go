package otel_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	affotel "github.com/affinitylb/affinity/otel"
	"github.com/affinitylb/affinity/sticky"
)

func Example() {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	}))
	defer app.Close()

	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	tel, err := affotel.New(affotel.WithTracerProvider(tp))
	if err != nil {
		log.Fatal(err)
	}
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: app.URL}})
	if err != nil {
		log.Fatal(err)
	}
	pol, err := cookie.New([][]byte{[]byte("a secret of at least 16 bytes")})
	if err != nil {
		log.Fatal(err)
	}
	h, err := sticky.New(set, pol, sticky.WithTransport(tel.Transport(sticky.DefaultTransport())))
	if err != nil {
		log.Fatal(err)
	}
	proxy := httptest.NewServer(otelhttp.NewHandler(tel.Handler(h), "proxy", otelhttp.WithTracerProvider(tp)))
	defer proxy.Close()

	resp, err := http.Get(proxy.URL)
	if err != nil {
		log.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	for _, s := range spans.Ended() {
		for _, kv := range s.Attributes() {
			if kv.Key == affotel.BackendIDKey {
				fmt.Printf("%s span: %s=%s\n", kindName(s.SpanKind()), kv.Key, kv.Value.AsString())
			}
		}
	}
	// Unordered output:
	// client span: affinity.backend.id=app1
	// server span: affinity.backend.id=app1
}

func kindName(k trace.SpanKind) string {
	if k == trace.SpanKindClient {
		return "client"
	}
	return "server"
}
