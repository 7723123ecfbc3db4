package sticky_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/sticky"
)

func ExampleNew() {
	// Two application servers; in production these are your real ones.
	app := func(name string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s", name)
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
	// The key must be the same on every replica of the balancer.
	pol, err := cookie.New([][]byte{[]byte("a secret of at least 16 bytes")})
	if err != nil {
		log.Fatal(err)
	}
	h, err := sticky.New(set, pol)
	if err != nil {
		log.Fatal(err)
	}
	lb := httptest.NewServer(h) // or http.ListenAndServe(":8080", h)
	defer lb.Close()

	// The first request is placed by the picker and bound with a cookie;
	// the next ones carry the cookie and stay on the same server.
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
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if cs := resp.Cookies(); len(cs) > 0 {
			bound = cs[0]
			fmt.Printf("%s (bound with cookie %q)\n", body, bound.Name)
		} else {
			fmt.Printf("%s\n", body)
		}
	}
	// Output:
	// hello from app1 (bound with cookie "affinity")
	// hello from app1
	// hello from app1
}
