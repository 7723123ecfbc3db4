package cli

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// End-to-end tests of how the key policies keep a key on its backend: the
// -picker never places keyed requests, and a draining backend keeps its
// keys until it leaves.

func TestEndToEndKeysIgnoreThePicker(t *testing.T) {
	p := startProxy(t, "-policy", "header", "-header", "X-Api-Key", "-picker", "roundrobin")
	servers := serversByKey(t, keys("key-", 20), 6, func(k string) *http.Request {
		req := get(t, p.url+"/whoami")
		req.Header.Set("X-Api-Key", k)
		return req
	})
	assert.Greater(t, len(distinct(servers)), 1, "every key on one server: %v", servers)

	unkeyed := map[string]int{}
	c := newPlainClient(t)
	for range 6 {
		unkeyed[do(t, c, get(t, p.url+"/whoami")).server]++
	}
	assert.Equal(t, map[string]int{"app1": 2, "app2": 2, "app3": 2}, unkeyed, "requests without a key are not placed by -picker roundrobin")
}

func TestEndToEndDrainUnderKeys(t *testing.T) {
	p := startProxy(t, "-policy", "header", "-header", "X-Api-Key", "-admin", "127.0.0.1:0",
		"-backends", demoBackends(t, "one", "two", "three"))
	ks := keys("key-", 30)
	c := newPlainClient(t)
	round := func() map[string]string {
		served := map[string]string{}
		for _, k := range ks {
			req := get(t, p.url+"/whoami")
			req.Header.Set("X-Api-Key", k)
			r := do(t, c, req)
			require.Equal(t, http.StatusOK, r.status, "key %q", k)
			served[k] = r.server
		}
		return served
	}
	home := round()
	const drained = "two"
	require.Contains(t, distinct(home), drained)

	status, body := callAdmin(t, p, http.MethodPost, "/backends/"+drained+"/drain", `{"timeout": "1h"}`)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, home, round(), "a key moved when its backend began draining")
	assert.Equal(t, home, round(), "a key moved while its backend drained")

	// The admin API's drain ends after 10 s idle, longer than a test
	// should wait: removing the backend ends it at once, as leaving does.
	status, body = callAdmin(t, p, http.MethodDelete, "/backends/"+drained, "")
	require.Equal(t, http.StatusNoContent, status, body)
	after := []map[string]string{round(), round()}
	for _, k := range ks {
		if home[k] == drained {
			assert.NotEqual(t, drained, after[0][k], "key %q", k)
		} else {
			assert.Equal(t, home[k], after[0][k], "key %q of a backend that stayed moved", k)
		}
		assert.Equal(t, after[0][k], after[1][k], "key %q moved twice", k)
	}
}
