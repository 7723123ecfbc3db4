package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
)

// BenchmarkObserve measures the hot path, one event kind at a time, for a
// backend already seen: it must not allocate.
func BenchmarkObserve(b *testing.B) {
	set, err := backend.NewSet([]backend.Config{{ID: "a", URL: "http://127.0.0.1:1"}, {ID: "b", URL: "http://127.0.0.1:2"}})
	if err != nil {
		b.Fatal(err)
	}
	a, bb := "a", "b"
	events := []event.Event{
		{Kind: event.Pick, Backend: a},
		{Kind: event.BoundHit, Backend: a},
		{Kind: event.Bind, Backend: a},
		{Kind: event.Redispatch, Backend: a, Prev: bb},
		{Kind: event.Retry, Backend: a, Prev: bb},
		{Kind: event.Rejected, Reason: event.Forged},
		{Kind: event.StateChange, Backend: a, From: backend.Healthy, To: backend.Unhealthy},
		{Kind: event.Done, Backend: a, Placement: event.Bound, Status: 200, Header: 3 * time.Millisecond, Elapsed: 4 * time.Millisecond},
	}
	for _, e := range events {
		b.Run(e.Kind.String(), func(b *testing.B) {
			r := newRecorder(b, set)
			r.Observe(e) // first sight
			b.ReportAllocs()
			for b.Loop() {
				r.Observe(e)
			}
		})
	}
	b.Run("bound_hit/parallel", func(b *testing.B) {
		r := newRecorder(b, set)
		e := event.Event{Kind: event.BoundHit, Backend: a}
		r.Observe(e)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.Observe(e)
			}
		})
	})
	b.Run("pick/parallel/16-backends", func(b *testing.B) {
		cfgs := make([]backend.Config, 16)
		for i := range cfgs {
			cfgs[i] = backend.Config{ID: fmt.Sprintf("b%d", i), URL: fmt.Sprintf("http://127.0.0.1:%d", i+1)}
		}
		set, err := backend.NewSet(cfgs)
		if err != nil {
			b.Fatal(err)
		}
		bs := set.Snapshot().Backends()
		r := newRecorder(b, set)
		for _, x := range bs {
			r.Observe(event.Event{Kind: event.Pick, Backend: x.ID()})
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				r.Observe(event.Event{Kind: event.Pick, Backend: bs[i%len(bs)].ID()})
				i++
			}
		})
	})
}

// BenchmarkScrape measures serving each output for a set of 100 backends.
func BenchmarkScrape(b *testing.B) {
	cfgs := make([]backend.Config, 100)
	for i := range cfgs {
		cfgs[i] = backend.Config{ID: fmt.Sprintf("app%03d", i), URL: fmt.Sprintf("http://10.0.%d.%d:8080", i/250, i%250+1)}
	}
	set, err := backend.NewSet(cfgs)
	if err != nil {
		b.Fatal(err)
	}
	r := newRecorder(b, set)
	for _, x := range set.Snapshot().Backends() {
		r.Observe(event.Event{Kind: event.Pick, Backend: x.ID()})
	}
	for _, tt := range []struct {
		name   string
		h      http.Handler
		target string
	}{
		{"metrics", r.Metrics(), "/metrics"},
		{"status/json", r.Status(), "/status?format=json"},
		{"status/html", r.Status(), "/status"},
		{"expvar", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(r.Expvar().String())) }), "/"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			b.ReportAllocs()
			for b.Loop() {
				tt.h.ServeHTTP(discard{}, req)
			}
		})
	}
}

// discard is a ResponseWriter that throws the response away.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}
