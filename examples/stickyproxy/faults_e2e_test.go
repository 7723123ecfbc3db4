package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// End-to-end tests of faults that must stay where they start: a backend
// that answers 500 to everything (-eject-status).

// backendState returns the state GET /backends/{id} shows.
func backendState(t *testing.T, p *proxy, id string) string {
	t.Helper()
	status, body := callAdmin(t, p, http.MethodGet, "/backends/"+id, "")
	require.Equal(t, http.StatusOK, status, body)
	var b backendJSON
	require.NoError(t, json.Unmarshal([]byte(body), &b), body)
	return b.State
}

func TestEndToEndEjectStatus(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		ejected bool // after 5 answers of 500 in a row
	}{
		{"default: answers never eject", nil, false},
		{"-eject-status 5xx", []string{"-eject-status", "5xx"}, true},
		{"-eject-status with a code", []string{"-eject-status", "502, 500"}, true},
		{"-eject-status without 500", []string{"-eject-status", "502,503,504,4XX"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Served-By", "broken")
				http.Error(w, "internal error", http.StatusInternalServerError)
			}))
			t.Cleanup(broken.Close)
			p := startProxy(t, append([]string{
				"-key", testKey,
				"-backends", "broken=" + broken.URL + "," + demoBackends(t, "one", "two"),
				"-admin", "127.0.0.1:0",
			}, tt.args...)...)

			// New clients until two are bound to broken: least connections
			// rotates through the idle backends. Each got a 500.
			var victims []*http.Client
			for range 6 {
				c := newClient(t)
				status, server, _ := send(t, c, p.url+"/", nil)
				if server != "broken" {
					require.Equal(t, http.StatusOK, status, server)
					continue
				}
				require.Equal(t, http.StatusInternalServerError, status)
				require.Contains(t, cookieNames(t, c, p.url), "affinity", "not bound to broken")
				if victims = append(victims, c); len(victims) == 2 {
					break
				}
			}
			require.Len(t, victims, 2, "no two new clients placed on broken")

			// Two failures so far; two more leave broken in: the default
			// ejection takes 5 in a row.
			for range 2 {
				status, server, _ := send(t, victims[0], p.url+"/", nil)
				require.Equal(t, "broken", server)
				require.Equal(t, http.StatusInternalServerError, status)
			}
			assert.Equal(t, "healthy", backendState(t, p, "broken"), "ejected before 5 failures")
			status, server, _ := send(t, victims[1], p.url+"/", nil)
			require.Equal(t, "broken", server)
			require.Equal(t, http.StatusInternalServerError, status)

			if !tt.ejected {
				assert.Equal(t, "healthy", backendState(t, p, "broken"))
				for _, c := range victims {
					_, server, _ := send(t, c, p.url+"/", nil)
					assert.Equal(t, "broken", server, "a client moved off a backend that was not ejected")
				}
				return
			}
			assert.Equal(t, "unhealthy", backendState(t, p, "broken"), "not ejected after 5 answers of 500")
			for i, c := range victims {
				// Placed anew on a healthy backend, and bound there.
				status, server, _ := send(t, c, p.url+"/", nil)
				require.Equal(t, http.StatusOK, status, "victim %d", i)
				require.Contains(t, []string{"one", "two"}, server, "victim %d", i)
				for range 3 {
					_, again, _ := send(t, c, p.url+"/whoami", nil)
					assert.Equal(t, server, again, "victim %d not bound to its new backend", i)
				}
			}
			for _, server := range newClientsReach(t, p, "/whoami", 4) {
				assert.NotEqual(t, "broken", server, "a new client placed on an ejected backend")
			}
			assert.Contains(t, p.stderr.String(), "backend ejected")
		})
	}
}
