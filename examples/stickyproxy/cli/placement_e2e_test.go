package cli

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEndToEndCanary moves the weight from blue to green, through the
// admin API, while clients come: each new client goes to the group with
// the weight, and a bound client stays on its backend whatever its group
// weighs. Then blue's backends are removed one by one: their clients
// move within blue while it has a backend, then to green.
func TestEndToEndCanary(t *testing.T) {
	p := startProxy(t, "-key", testKey, "-admin", "127.0.0.1:0",
		"-backends", groupBackends(t, "blue:b1", "blue:b2", "green:g1", "green:g2"),
		"-group-weights", "blue=100,green=0")
	group := func(server string) string {
		if strings.HasPrefix(server, "b") {
			return "blue"
		}
		return "green"
	}
	type client struct {
		cookie *http.Cookie
		server string
	}
	// newClients sends n new clients and returns them, bound, with how
	// many went to each group.
	newClients := func(n int) ([]client, map[string]int) {
		t.Helper()
		var cs []client
		counts := map[string]int{}
		for range n {
			r := do(t, newPlainClient(t), get(t, p.url+"/whoami"))
			require.Equal(t, http.StatusOK, r.status)
			c := findCookie(r.cookies, "affinity")
			require.NotNil(t, c, "a new client is bound")
			cs = append(cs, client{c, r.server})
			counts[group(r.server)]++
		}
		return cs, counts
	}
	setWeight := func(g string, w int) {
		t.Helper()
		status, body := callAdmin(t, p, http.MethodPut, "/groups/"+g, `{"weight":`+strconv.Itoa(w)+`}`)
		require.Equal(t, http.StatusOK, status, body)
	}
	var bound []client
	steps := []struct {
		blue, green int
		wantGreen   int // of 100 new clients, give or take 2
	}{{100, 0, 0}, {90, 10, 10}, {50, 50, 50}, {0, 100, 100}}
	for _, s := range steps {
		setWeight("blue", s.blue)
		setWeight("green", s.green)
		cs, counts := newClients(100)
		assert.InDelta(t, s.wantGreen, counts["green"], 2, "blue=%d green=%d: %v", s.blue, s.green, counts)
		if s.green == 0 {
			assert.Zero(t, counts["green"], "green at 0 took a new client")
		}
		if s.blue == 0 {
			assert.Zero(t, counts["blue"], "blue at 0 took a new client")
		}
		bound = append(bound, cs[:20]...)
		// Every client bound so far stays on its backend.
		for _, c := range bound {
			r := do(t, newPlainClient(t), get(t, p.url+"/whoami", c.cookie))
			require.Equal(t, http.StatusOK, r.status)
			assert.Equal(t, c.server, r.server, "blue=%d green=%d: a bound client moved", s.blue, s.green)
		}
	}

	// Blue weighs 0 now. b1 removed: its clients move to b2, in their
	// group; b2 removed too: blue has no backend left, and they follow
	// the weights, to green.
	var onB1 []client
	for _, c := range bound {
		if c.server == "b1" {
			onB1 = append(onB1, c)
		}
	}
	require.NotEmpty(t, onB1)
	for _, step := range []struct{ remove, want string }{{"b1", "b2"}, {"b2", "green"}} {
		status, body := callAdmin(t, p, http.MethodDelete, "/backends/"+step.remove, "")
		require.Equal(t, http.StatusNoContent, status, body)
		for i, c := range onB1 {
			r := do(t, newPlainClient(t), get(t, p.url+"/whoami", c.cookie))
			require.Equal(t, http.StatusOK, r.status)
			if step.want == "green" {
				assert.Equal(t, "green", group(r.server), "%s removed: a client of b1", step.remove)
			} else {
				assert.Equal(t, step.want, r.server, "%s removed: a client of b1", step.remove)
			}
			if nc := findCookie(r.cookies, "affinity"); nc != nil {
				onB1[i].cookie = nc // re-bound
			}
		}
	}
}
