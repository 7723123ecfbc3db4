package main

import (
	"net/http"
	"net/http/cookiejar"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/examples/internal/demotest"
)

// newClient returns a client with a cookie jar of its own: a new client.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar}
}

// whoami asks p which backend serves c.
func whoami(t *testing.T, c *http.Client, p *demotest.Program) string {
	t.Helper()
	resp, _ := demotest.Get(t, c, p.URL+"/whoami")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return resp.Header.Get("X-Served-By")
}

// New clients are placed in the front end's zone, on both of its backends,
// and each stays where it was placed.
func TestNewClientsStayInZone(t *testing.T) {
	p := demotest.Start(t, run) // zone eu: app1 and app2 in eu, app3 in us
	servers := map[string]bool{}
	for range 40 {
		c := newClient(t)
		resp, _ := demotest.Get(t, c, p.URL+"/whoami")
		first := resp.Header.Get("X-Served-By")
		require.NotNil(t, demotest.Cookie(resp, "affinity"), "no sticky cookie")
		servers[first] = true
		for range 3 {
			assert.Equal(t, first, whoami(t, c, p), "the client moved")
		}
	}
	assert.Equal(t, map[string]bool{"app1": true, "app2": true}, servers)
}

// -zone chooses the zone whose backends take the new clients.
func TestZoneFlag(t *testing.T) {
	p := demotest.Start(t, run, "-zone", "us")
	for range 5 {
		assert.Equal(t, "app3", whoami(t, newClient(t), p))
	}
}

// Once the picker has measured app1 answering after 300ms, new clients go
// to app2, its zone's other backend; the client placed on app1 before
// stays there.
func TestNewClientsLeaveASlowBackend(t *testing.T) {
	p := demotest.Start(t, run, "-slow", "app1")
	first := newClient(t)
	require.Equal(t, "app1", whoami(t, first, p), "unmeasured backends tie: the first in order wins")
	require.Equal(t, "app2", whoami(t, newClient(t), p), "the unmeasured backend goes before a measured one")
	for range 10 {
		assert.Equal(t, "app2", whoami(t, newClient(t), p), "a new client was placed on the slow backend")
	}
	for range 3 {
		assert.Equal(t, "app1", whoami(t, first, p), "the bound client moved")
	}
}

// -zones puts the backends in zones, in their metadata, whatever their IDs.
func TestZonesFlag(t *testing.T) {
	p := demotest.Start(t, run, "-zones", "app1=us,app2=us,app3=eu")
	for range 5 {
		assert.Equal(t, "app3", whoami(t, newClient(t), p))
	}
	assert.EqualError(t, setZones(nil, "app1"), `-zones: "app1": want ID=ZONE`)
}
