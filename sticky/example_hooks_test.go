package sticky_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/sticky"
)

// The ReverseProxy hooks run after the handler's own work: Rewrite on
// every attempt's outgoing request, ModifyResponse on the backend's
// response, and the error handler for what cannot be forwarded.
func ExampleWithRewrite() {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s for tenant %s", r.URL.Path, r.Header.Get("X-Tenant"))
	}))
	defer app.Close()
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: app.URL}})
	if err != nil {
		log.Fatal(err)
	}
	pol, err := cookie.New([][]byte{[]byte("a secret of at least 16 bytes")})
	if err != nil {
		log.Fatal(err)
	}
	h, err := sticky.New(set, pol,
		sticky.WithRewrite(func(pr *httputil.ProxyRequest) {
			pr.Out.Header.Set("X-Tenant", "blue")
			pr.Out.URL.Path = "/v2" + pr.Out.URL.Path
		}),
		sticky.WithModifyResponse(func(resp *http.Response) error {
			resp.Header.Set("X-Proxied", "yes")
			return nil
		}),
		sticky.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, balancer.ErrNoBackend) {
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
				return
			}
			http.Error(w, "try again", http.StatusBadGateway)
		}))
	if err != nil {
		log.Fatal(err)
	}
	lb := httptest.NewServer(h)
	defer lb.Close()

	get := func() {
		resp, err := http.Get(lb.URL + "/orders")
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %q proxied=%s\n", resp.StatusCode, body, resp.Header.Get("X-Proxied"))
	}
	get()
	if _, err := set.Remove("app1"); err != nil {
		log.Fatal(err)
	}
	get()
	// Output:
	// 200 "/v2/orders for tenant blue" proxied=yes
	// 503 "down for maintenance\n" proxied=
}
