package gateway_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/gateway"
)

func ExampleNewPolicy() {
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://10.0.0.1:8080"}})
	if err != nil {
		log.Fatal(err)
	}
	// An HTTPRoute rule matching /cart with
	//
	//	sessionPersistence:
	//	  sessionName: cart-session
	//	  absoluteTimeout: 1h
	//	  cookieConfig:
	//	    lifetimeType: Permanent
	sp := gateway.SessionPersistence{
		SessionName:     "cart-session",
		AbsoluteTimeout: time.Hour,
		CookieConfig:    &gateway.CookieConfig{LifetimeType: gateway.Permanent},
		Path:            "/cart",
	}
	// In production, the keys come from a secret store, the same for
	// every replica.
	p, err := gateway.NewPolicy(sp, [][]byte{[]byte("a secret of at least 16 bytes")})
	if err != nil {
		log.Fatal(err)
	}

	snap := set.Snapshot()
	r := httptest.NewRequest(http.MethodGet, "http://shop.example/cart", nil)
	resp := &http.Response{Header: http.Header{}}
	p.Save(r, resp, snap.Lookup("app1"), p.Lookup(r, snap))
	c, err := http.ParseSetCookie(resp.Header.Get("Set-Cookie"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Name, c.Path, c.MaxAge)

	// The Header type, for clients that keep no cookies.
	h, err := gateway.NewPolicy(gateway.SessionPersistence{SessionName: "X-Session", Type: gateway.Header}, [][]byte{[]byte("a secret of at least 16 bytes")})
	if err != nil {
		log.Fatal(err)
	}
	resp = &http.Response{Header: http.Header{}}
	h.Save(r, resp, snap.Lookup("app1"), h.Lookup(r, snap))
	fmt.Println("X-Session:", len(resp.Header.Get("X-Session")), "opaque characters")

	// Output:
	// cart-session /cart 3600
	// X-Session: 44 opaque characters
}
