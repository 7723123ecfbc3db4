package policy_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
)

func ExampleChain() {
	set, err := backend.NewSet([]backend.Config{
		{ID: "app1", URL: "http://10.0.0.1:8080"},
		{ID: "app2", URL: "http://10.0.0.2:8080"},
	})
	if err != nil {
		log.Fatal(err)
	}
	lb, err := cookie.New([][]byte{[]byte("a secret of at least 16 bytes")})
	if err != nil {
		log.Fatal(err)
	}
	clientID, err := policy.HeaderKey("X-Client-ID")
	if err != nil {
		log.Fatal(err)
	}
	// Browsers are bound by the balancer's cookie; API clients, which keep
	// no cookies, by their X-Client-ID; anything else goes to the picker.
	chain, err := policy.NewChain(lb, clientID)
	if err != nil {
		log.Fatal(err)
	}
	snap := set.Snapshot()

	// An API client is placed by its key: a hashing picker maps the same
	// key to the same backend, app2 say.
	api := httptest.NewRequest(http.MethodGet, "http://shop.example/api/orders", nil)
	api.Header.Set("X-Client-ID", "build-bot-7")
	b := chain.Lookup(api, snap)
	fmt.Println("API client:", b.Status)
	fmt.Println("same key, same KeyHash:", b.KeyHash == chain.Lookup(api, snap).KeyHash)

	// Placed by its key, it is given a cookie too, which binds it once
	// it sends the cookie back, even if membership changes move its key.
	resp := &http.Response{Header: http.Header{}}
	chain.Save(api, resp, snap.Lookup("app2"), b)
	for _, c := range resp.Cookies() {
		api.AddCookie(c)
	}
	b = chain.Lookup(api, snap)
	fmt.Println("with its cookie:", b.Status, b.ID)

	// A browser sending a tampered cookie and no key is left to the
	// picker, and observers see why.
	browser := httptest.NewRequest(http.MethodGet, "http://shop.example/", nil)
	browser.Header.Set("Cookie", "affinity=AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	fmt.Println("tampered cookie:", chain.Lookup(browser, snap).Status)

	// Output:
	// API client: keyed
	// same key, same KeyHash: true
	// with its cookie: valid app2
	// tampered cookie: forged
}

// tenantKey is a policy of the user's: it binds requests by the tenant
// their path names, /t/{tenant}/..., hashed as the built-in key policies
// hash theirs.
type tenantKey struct{}

func (tenantKey) Lookup(r *http.Request, _ *backend.Snapshot) policy.Binding {
	rest, ok := strings.CutPrefix(r.URL.Path, "/t/")
	tenant, _, _ := strings.Cut(rest, "/")
	if !ok || tenant == "" {
		return policy.Binding{Status: policy.None}
	}
	return policy.Binding{Status: policy.Keyed, KeyHash: policy.HashKey(tenant)}
}

func (tenantKey) Save(*http.Request, *http.Response, *backend.Backend, policy.Binding) {}

func ExampleHashKey() {
	header, err := policy.HeaderKey("X-Tenant")
	if err != nil {
		log.Fatal(err)
	}
	// Browsers name their tenant in the path, programs in a header: either
	// way, a hashing picker sends the tenant to the same backend.
	chain, err := policy.NewChain(tenantKey{}, header)
	if err != nil {
		log.Fatal(err)
	}
	page := httptest.NewRequest(http.MethodGet, "http://shop.example/t/acme/orders", nil)
	api := httptest.NewRequest(http.MethodGet, "http://shop.example/api/orders", nil)
	api.Header.Set("X-Tenant", "acme")

	b1, b2 := chain.Lookup(page, nil), chain.Lookup(api, nil)
	fmt.Println(b1.Status, b2.Status)
	fmt.Println("same tenant, same KeyHash:", b1.KeyHash == b2.KeyHash)

	// Output:
	// keyed keyed
	// same tenant, same KeyHash: true
}
