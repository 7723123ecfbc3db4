package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/examples/internal/demotest"
)

// user is a browser: a cookie jar, logged in on the server it reached
// first.
type user struct {
	name   string
	c      *http.Client
	server string // blue1, green2...
}

// newUser reaches p as a new client, logs in as name there, and returns
// the user, bound to the server that answered.
func newUser(t *testing.T, p *demotest.Program, name string) *user {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	u := &user{name: name, c: &http.Client{Jar: jar}}
	resp, _ := demotest.Do(t, u.c, postForm(t, p.URL+"/login", url.Values{"name": {name}}))
	require.Equal(t, http.StatusOK, resp.StatusCode) // 303 to /, followed
	u.server = u.whoami(t, p)
	return u
}

// whoami returns the server that answers u's GET /whoami, and checks that
// u is logged in there.
func (u *user) whoami(t *testing.T, p *demotest.Program) string {
	t.Helper()
	resp, body := demotest.Get(t, u.c, p.URL+"/whoami")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, u.name, demotest.Field(body, "user"), "%s lost the session on %s", u.name, demotest.Field(body, "server"))
	return demotest.Field(body, "server")
}

func postForm(t *testing.T, u string, form url.Values) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func version(server string) string { return strings.TrimRight(server, "0123456789") }

// TestRollout walks the rollout step by step with POST /rollout/next.
// At each step, 100 new users log in: the share that lands on green is the
// step's weight, within 2; then every user logged in so far, at this step
// or an earlier one, is still on the server it started on, and still
// logged in, whatever its version weighs now.
func TestRollout(t *testing.T) {
	p := demotest.Start(t, run, "-step", "0")
	assert.Contains(t, p.Stdout(), "blue (v1) 100%, green (v2) 0% of new clients")
	c := &http.Client{}
	var users []*user
	for i, wantGreen := range []int{0, 10, 50, 100} {
		if i > 0 {
			resp, body := demotest.Do(t, c, postForm(t, p.URL+"/rollout/next", nil))
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
		}
		resp, body := demotest.Get(t, c, p.URL+"/rollout")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var st status
		require.NoError(t, json.Unmarshal([]byte(body), &st))
		require.Equal(t, status{Step: i + 1, Of: 4, Weights: map[string]int{"blue": 100 - wantGreen, "green": wantGreen}}, st)

		counts := map[string]int{}
		for j := range 100 {
			u := newUser(t, p, fmt.Sprintf("user%d-%d", i+1, j))
			counts[version(u.server)]++
			if j < 10 {
				users = append(users, u)
			}
		}
		assert.InDelta(t, wantGreen, counts["green"], 2, "step %d: %v", i+1, counts)
		if wantGreen == 0 || wantGreen == 100 {
			assert.Equal(t, 100, counts[map[int]string{0: "blue", 100: "green"}[wantGreen]], "step %d: %v", i+1, counts)
		}
		for _, u := range users {
			assert.Equal(t, u.server, u.whoami(t, p), "step %d: %s moved", i+1, u.name)
		}
	}
	resp, _ := demotest.Do(t, c, postForm(t, p.URL+"/rollout/next", nil))
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "past the last step")
}

// TestRolloutByTime lets -step move the weights: the rollout reaches its
// last step and stays there.
func TestRolloutByTime(t *testing.T) {
	p := demotest.Start(t, run, "-step", "10ms")
	c := &http.Client{}
	var st status
	deadline := time.Now().Add(10 * time.Second) // a guard, not a measure
	for st.Step != 4 && time.Now().Before(deadline) {
		_, body := demotest.Get(t, c, p.URL+"/rollout")
		require.NoError(t, json.Unmarshal([]byte(body), &st))
		time.Sleep(5 * time.Millisecond)
	}
	require.Equal(t, status{Step: 4, Of: 4, Weights: map[string]int{"blue": 0, "green": 100}}, st)
	for range 10 {
		resp, body := demotest.Get(t, c, p.URL+"/whoami")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "green", version(demotest.Field(body, "server")), "a new client after the rollout")
	}
}

func TestBadStep(t *testing.T) {
	err := run(t.Context(), []string{"-step", "-1s"}, nil, nil, func(string) { t.Error("started") })
	assert.EqualError(t, err, "-step -1s: negative")
}
