package main

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// phpApp is a tiny application that handles sessions the way PHP does by
// default: in its own memory, under an ID in a cookie (PHPSESSID), set on
// login and deleted on logout. Another instance knows none of its sessions.
//
//	POST /login   name=NAME: starts a session; "server=S user=NAME"
//	POST /logout  ends the session
//	GET  /...     "server=S user=NAME", NAME empty without a session
type phpApp struct {
	name   string
	cookie string        // the session cookie's name
	ttl    time.Duration // its lifetime; 0: until the browser closes

	mu       sync.Mutex
	sessions map[string]string // ID → user; a real application expires them
}

func newPHPApp(name, cookie string, ttl time.Duration) *phpApp {
	return &phpApp{name: name, cookie: cookie, ttl: ttl, sessions: map[string]string{}}
}

func (a *phpApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Served-By", a.name)
	if (r.URL.Path == "/login" || r.URL.Path == "/logout") && r.Method != http.MethodPost {
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/login":
		name := strings.TrimSpace(r.PostFormValue("name"))
		if name == "" || len(name) > 64 {
			http.Error(w, "400 bad request: name must be 1 to 64 bytes", http.StatusBadRequest)
			return
		}
		id := rand.Text()
		a.mu.Lock()
		a.sessions[id] = name
		a.mu.Unlock()
		// Max-Age as PHP's session.cookie_lifetime: 0 sets none.
		a.setCookie(w, id, int(a.ttl/time.Second))
		fmt.Fprintf(w, "server=%s user=%s\n", a.name, name)
	case "/logout":
		if c, err := r.Cookie(a.cookie); err == nil {
			a.mu.Lock()
			delete(a.sessions, c.Value)
			a.mu.Unlock()
		}
		a.setCookie(w, "deleted", -1) // "deleted; Max-Age=0": how PHP deletes a cookie
		fmt.Fprintf(w, "server=%s user=\n", a.name)
	default:
		var user string
		if c, err := r.Cookie(a.cookie); err == nil {
			a.mu.Lock()
			user = a.sessions[c.Value]
			a.mu.Unlock()
		}
		fmt.Fprintf(w, "server=%s user=%s\n", a.name, user)
	}
}

func (a *phpApp) setCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: a.cookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}
