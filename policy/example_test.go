package policy_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/policy"
)

func ExampleCookie() {
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://10.0.0.1:8080"}})
	if err != nil {
		log.Fatal(err)
	}
	// In production, the keys come from a secret store: at least 16 random
	// bytes, the same on every replica.
	cookie, err := policy.NewCookie([][]byte{[]byte("a secret of at least 16 bytes")})
	if err != nil {
		log.Fatal(err)
	}

	// A first request carries no binding; app1 answers it and Save binds
	// the client to app1.
	r := httptest.NewRequest(http.MethodGet, "http://shop.example/", nil)
	snap := set.Snapshot()
	prev := cookie.Lookup(r, snap)
	fmt.Println("first request:", prev.Status)

	resp := httptest.NewRecorder().Result()
	cookie.Save(r, resp, snap.Lookup("app1"), prev)
	setCookie := resp.Header.Get("Set-Cookie")
	for _, attr := range strings.Split(setCookie, "; ") {
		name, _, _ := strings.Cut(attr, "=")
		switch name {
		case cookie.Name():
			fmt.Println(name + "=<44 opaque characters>")
		case "Expires":
			fmt.Println("Expires=<now + 15m>")
		default:
			fmt.Println(attr)
		}
	}

	// The client sends the cookie back and is bound to app1.
	c, err := http.ParseSetCookie(setCookie)
	if err != nil {
		log.Fatal(err)
	}
	r2 := httptest.NewRequest(http.MethodGet, "http://shop.example/cart", nil)
	r2.AddCookie(c)
	b := cookie.Lookup(r2, set.Snapshot())
	fmt.Println("next request:", b.Status, b.ID)

	// Output:
	// first request: none
	// affinity=<44 opaque characters>
	// Path=/
	// Expires=<now + 15m>
	// Max-Age=900
	// HttpOnly
	// SameSite=Lax
	// next request: valid app1
}
