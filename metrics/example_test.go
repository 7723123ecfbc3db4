package metrics_test

import (
	"bufio"
	"encoding/json"
	"expvar"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/metrics"
	"github.com/affinitylb/affinity/sticky"
)

// The Recorder observes both the set (state changes, drains), which New
// arranges, and the handler (picks, bindings...), which takes it as an
// observer.
func ExampleNew() {
	app := func(name string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		return srv.URL // closed when the example exits
	}

	set, err := backend.NewSet([]backend.Config{
		{ID: "app1", URL: app("app1")},
		{ID: "app2", URL: app("app2")},
	})
	if err != nil {
		log.Fatal(err)
	}
	rec, err := metrics.New(set)
	if err != nil {
		log.Fatal(err)
	}
	pol, err := cookie.New([][]byte{[]byte("a secret of at least 16 bytes")})
	if err != nil {
		log.Fatal(err)
	}
	h, err := sticky.New(set, pol, sticky.WithObserver(rec))
	if err != nil {
		log.Fatal(err)
	}
	lb := httptest.NewServer(h)
	defer lb.Close()

	// The admin side: metrics, status page; expvar too, with
	// expvar.Publish("affinity", rec.Expvar()).
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", rec.Metrics())
	mux.Handle("GET /status", rec.Status())
	admin := httptest.NewServer(mux)
	defer admin.Close()

	// One client, three requests: picked and bound, then bound hits.
	var bound *http.Cookie
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, lb.URL, nil)
		if bound != nil {
			req.AddCookie(bound)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if cs := resp.Cookies(); len(cs) > 0 {
			bound = cs[0]
		}
	}
	if err := set.SetState("app2", backend.Draining); err != nil {
		log.Fatal(err)
	}

	resp, err := http.Get(admin.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range []string{"affinity_picks_total", "affinity_bound_hits_total", "affinity_bindings_total", "affinity_state_changes_total{backend=\"app2\""} {
			if strings.HasPrefix(line, name) {
				fmt.Println(line)
			}
		}
	}
	// Output:
	// affinity_picks_total{backend="app1"} 1
	// affinity_picks_total{backend="app2"} 0
	// affinity_bound_hits_total{backend="app1"} 2
	// affinity_bound_hits_total{backend="app2"} 0
	// affinity_bindings_total{backend="app1"} 1
	// affinity_bindings_total{backend="app2"} 0
	// affinity_state_changes_total{backend="app2",to="healthy"} 0
	// affinity_state_changes_total{backend="app2",to="unhealthy"} 0
	// affinity_state_changes_total{backend="app2",to="draining"} 1
}

// A Recorder can also be fed events directly, by anything that makes
// them.
func ExampleRecorder_Status() {
	set, err := backend.NewSet([]backend.Config{
		{ID: "app1", URL: "http://10.0.0.1:8080"},
		{ID: "app2", URL: "http://10.0.0.2:8080", Weight: 2},
	})
	if err != nil {
		log.Fatal(err)
	}
	rec, err := metrics.New(set)
	if err != nil {
		log.Fatal(err)
	}
	rec.Observe(event.Event{Kind: event.Pick, Backend: "app1"})
	rec.Observe(event.Event{Kind: event.Bind, Backend: "app1"})

	w := httptest.NewRecorder()
	rec.Status().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/status?format=json", nil))
	var page struct {
		Backends []struct {
			ID, URL, State     string
			Weight             int
			BindingsLastMinute int `json:"bindings_last_minute"`
			RPS                []int
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
		log.Fatal(err)
	}
	for _, b := range page.Backends {
		fmt.Printf("%s %s %s weight=%d bindings_last_minute=%d rps=%d values\n",
			b.ID, b.URL, b.State, b.Weight, b.BindingsLastMinute, len(b.RPS))
	}
	// Output:
	// app1 http://10.0.0.1:8080 healthy weight=1 bindings_last_minute=1 rps=300 values
	// app2 http://10.0.0.2:8080 healthy weight=2 bindings_last_minute=0 rps=300 values
}

// The Recorder publishes nothing itself: the program names its expvar.
func ExampleRecorder_Expvar() {
	set, err := backend.NewSet(nil)
	if err != nil {
		log.Fatal(err)
	}
	rec, err := metrics.New(set)
	if err != nil {
		log.Fatal(err)
	}
	expvar.Publish("affinity", rec.Expvar())
	// GET /debug/vars (net/http's DefaultServeMux, with expvar imported)
	// now includes "affinity": {"backends": {...}, "fail_open": false, ...}.
}
