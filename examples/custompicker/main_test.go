package main

import (
	"net/http"
	"net/http/cookiejar"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/examples/internal/demotest"
)

// New clients are placed in the front end's zone, on both of its backends,
// and each stays where it was placed.
func TestNewClientsStayInZone(t *testing.T) {
	p := demotest.Start(t, run) // zone eu: eu-1, eu-2, us-1
	servers := map[string]bool{}
	for range 40 {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		c := &http.Client{Jar: jar}
		resp, _ := demotest.Get(t, c, p.URL+"/whoami")
		first := resp.Header.Get("X-Served-By")
		require.NotNil(t, demotest.Cookie(resp, "affinity"), "no sticky cookie")
		servers[first] = true
		for range 3 {
			resp, _ := demotest.Get(t, c, p.URL+"/whoami")
			assert.Equal(t, first, resp.Header.Get("X-Served-By"), "the client moved")
		}
	}
	assert.Equal(t, map[string]bool{"eu-1": true, "eu-2": true}, servers)
}

// -zone chooses the zone whose backends take the new clients.
func TestZoneFlag(t *testing.T) {
	p := demotest.Start(t, run, "-zone", "us")
	for range 5 {
		resp, _ := demotest.Get(t, &http.Client{}, p.URL+"/whoami")
		assert.Equal(t, "us-1", resp.Header.Get("X-Served-By"))
	}
}
