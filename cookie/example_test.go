package cookie_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
)

func ExampleNew() {
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://10.0.0.1:8080"}})
	if err != nil {
		log.Fatal(err)
	}
	// In production, the keys come from a secret store: at least 16 random
	// bytes, the same on every replica.
	lb, err := cookie.New([][]byte{[]byte("a secret of at least 16 bytes")})
	if err != nil {
		log.Fatal(err)
	}

	// A first request carries no binding; app1 answers it and Save binds
	// the client to app1.
	r := httptest.NewRequest(http.MethodGet, "http://shop.example/", nil)
	snap := set.Snapshot()
	prev := lb.Lookup(r, snap)
	fmt.Println("first request:", prev.Status)

	resp := httptest.NewRecorder().Result()
	lb.Save(r, resp, snap.Lookup("app1"), prev)
	setCookie := resp.Header.Get("Set-Cookie")
	for _, attr := range strings.Split(setCookie, "; ") {
		name, _, _ := strings.Cut(attr, "=")
		switch name {
		case lb.Name():
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
	b := lb.Lookup(r2, set.Snapshot())
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

func ExampleNewApp() {
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://10.0.0.1:8080"}})
	if err != nil {
		log.Fatal(err)
	}
	// The balancer's cookie follows PHP's session cookie. The fixed clock
	// keeps this example's output the same every day.
	noon := func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }
	app, err := cookie.NewApp("PHPSESSID", [][]byte{[]byte("a secret of at least 16 bytes")}, cookie.WithClock(noon))
	if err != nil {
		log.Fatal(err)
	}
	snap := set.Snapshot()
	app1 := snap.Lookup("app1")

	// serve has app1 answer r, setting the application's cookie with
	// appCookie unless it is empty; lets the policy save its binding;
	// prints every Set-Cookie line, and returns the cookies set.
	serve := func(r *http.Request, prev policy.Binding, appCookie string) []*http.Cookie {
		resp := &http.Response{Header: http.Header{}}
		if appCookie != "" {
			resp.Header.Add("Set-Cookie", appCookie)
		}
		app.Save(r, resp, app1, prev)
		for _, l := range resp.Header.Values("Set-Cookie") {
			if v, ok := strings.CutPrefix(l, "affinity="); ok && len(v) > 44 {
				l = "affinity=<44 opaque characters>" + v[44:]
			}
			fmt.Println("  Set-Cookie:", l)
		}
		return resp.Cookies()
	}

	// A visitor browses the catalogue: no session yet, so no binding.
	r := httptest.NewRequest(http.MethodGet, "http://shop.example/", nil)
	prev := app.Lookup(r, snap)
	fmt.Println("browsing:", prev.Status)
	serve(r, prev, "")

	// They log in: the application starts a 30-minute session, and the
	// client is bound to app1 for as long.
	fmt.Println("login:")
	jar := serve(r, prev, "PHPSESSID=s3ss10n; Path=/; Max-Age=1800; HttpOnly")

	r2 := httptest.NewRequest(http.MethodGet, "http://shop.example/cart", nil)
	for _, c := range jar {
		r2.AddCookie(c)
	}
	b := app.Lookup(r2, snap)
	fmt.Println("next request:", b.Status, b.ID)

	// They log out: the application deletes its cookie, and the balancer
	// deletes its own.
	fmt.Println("logout:")
	serve(r2, b, "PHPSESSID=; Path=/; Max-Age=0")

	// Output:
	// browsing: none
	// login:
	//   Set-Cookie: PHPSESSID=s3ss10n; Path=/; Max-Age=1800; HttpOnly
	//   Set-Cookie: affinity=<44 opaque characters>; Path=/; Expires=Sun, 01 Jun 2025 12:30:00 GMT; Max-Age=1800; HttpOnly; SameSite=Lax
	// next request: valid app1
	// logout:
	//   Set-Cookie: PHPSESSID=; Path=/; Max-Age=0
	//   Set-Cookie: affinity=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax
}

func ExampleNewHeader() {
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://10.0.0.1:8080"}})
	if err != nil {
		log.Fatal(err)
	}
	// An API client that keeps no cookies echoes the X-Session header.
	lb, err := cookie.NewHeader("X-Session", [][]byte{[]byte("a secret of at least 16 bytes")})
	if err != nil {
		log.Fatal(err)
	}
	snap := set.Snapshot()

	r := httptest.NewRequest(http.MethodPost, "http://api.example/mcp", nil)
	prev := lb.Lookup(r, snap)
	fmt.Println("first request:", prev.Status)
	resp := &http.Response{Header: http.Header{}}
	lb.Save(r, resp, snap.Lookup("app1"), prev)
	token := resp.Header.Get("X-Session")
	fmt.Println("X-Session:", len(token), "opaque characters")

	r2 := httptest.NewRequest(http.MethodPost, "http://api.example/mcp", nil)
	r2.Header.Set("X-Session", token)
	b := lb.Lookup(r2, snap)
	fmt.Println("next request:", b.Status, b.ID)

	// Output:
	// first request: none
	// X-Session: 44 opaque characters
	// next request: valid app1
}
