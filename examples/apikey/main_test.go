package main

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/affinitylb/affinity/examples/internal/demotest"
)

// Each key sticks to one backend, the keys spread over the backends, and
// requests without a key are served too. No cookie is ever set.
func TestKeysStick(t *testing.T) {
	p := demotest.Start(t, run)
	c := &http.Client{}
	homes := map[string]string{} // key → backend
	used := map[string]bool{}
	for i := range 20 {
		key := fmt.Sprintf("client-%d", i)
		for range 3 {
			resp, body := demotest.Get(t, c, p.URL+"/whoami", "X-Api-Key", key)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Empty(t, resp.Cookies())
			server := demotest.Field(body, "server")
			if home, ok := homes[key]; ok {
				assert.Equal(t, home, server, "key %s moved", key)
			}
			homes[key], used[server] = server, true
		}
	}
	assert.Greater(t, len(used), 1, "20 keys all on one backend")

	resp, body := demotest.Get(t, c, p.URL+"/whoami")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotEmpty(t, demotest.Field(body, "server"), "a keyless request was not served")
}

// -header names another header, and X-Api-Key is then no key: requests
// carrying the same X-Api-Key are placed afresh each time, by least
// connections, which takes idle backends in turn.
func TestHeaderFlag(t *testing.T) {
	p := demotest.Start(t, run, "-header", "X-Tenant")
	c := &http.Client{}
	for _, tenant := range []string{"acme", "globex", "initech"} {
		_, first := demotest.Get(t, c, p.URL+"/whoami", "X-Tenant", tenant)
		for range 3 {
			_, body := demotest.Get(t, c, p.URL+"/whoami", "X-Tenant", tenant)
			assert.Equal(t, first, body, "tenant %s moved", tenant)
		}
	}
	servers := map[string]bool{}
	for range 3 {
		_, body := demotest.Get(t, c, p.URL+"/whoami", "X-Api-Key", "k1")
		servers[demotest.Field(body, "server")] = true
	}
	assert.Len(t, servers, 3, "X-Api-Key still binds")
}
