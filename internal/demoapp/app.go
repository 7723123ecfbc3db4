package demoapp

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// SessionCookie is the name of the cookie that carries an [App]'s session
// ID.
const SessionCookie = "demo_session"

// MaxNameLen is the longest user name, in characters, that /login accepts.
const MaxNameLen = 64

// maxFormBytes bounds the body /login reads.
const maxFormBytes = 4 << 10

// App is the demo application server, an [http.Handler]. Its sessions live
// in its own memory: another App, even one with the same name, knows none of
// them. An App is safe for concurrent use.
type App struct {
	name     string
	sessions *sessions
	requests atomic.Int64
}

// New returns an App that calls itself name in its pages and in the
// X-Served-By header.
func New(name string) *App {
	return &App{name: name, sessions: newSessions(MaxSessions)}
}

// Name returns the name the App was created with.
func (a *App) Name() string { return a.name }

// Sessions returns the number of sessions the App holds, logged in or not.
func (a *App) Sessions() int { return a.sessions.len() }

// Requests returns the number of requests the App has served.
func (a *App) Requests() int64 { return a.requests.Load() }

// ServeHTTP answers one request; see the package documentation for the
// conversation.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	w.Header().Set("X-Served-By", a.name)
	w.Header().Set("Cache-Control", "no-store") // pages differ per user
	switch r.URL.Path {
	case "/login":
		if allow(w, r, http.MethodPost) {
			a.login(w, r)
		}
	case "/logout":
		if allow(w, r, http.MethodPost) {
			a.logout(w, r)
		}
	case "/whoami":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			a.whoami(w, r)
		}
	default:
		if allow(w, r, http.MethodGet, http.MethodHead) {
			a.page(w, r)
		}
	}
}

// page shows the hello page to a logged-in session, else the login page,
// starting a session for a visitor who has none.
func (a *App) page(w http.ResponseWriter, r *http.Request) {
	user, ok := a.user(r)
	if !ok {
		http.SetCookie(w, cookie(a.sessions.create(""), 0))
	}
	d := pageData{Server: a.name, User: user, Path: r.URL.Path}
	if user == "" {
		render(w, loginPage, d)
		return
	}
	render(w, helloPage, d)
}

// login logs the client in under the form's name. It always issues a fresh
// session ID, so an ID known before login is worthless after it.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "400 bad request: unreadable form", http.StatusBadRequest)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if !validName(name) {
		http.Error(w, fmt.Sprintf("400 bad request: name must be 1 to %d printable characters", MaxNameLen), http.StatusBadRequest)
		return
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		a.sessions.delete(c.Value)
	}
	http.SetCookie(w, cookie(a.sessions.create(name), 0))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the client's session and expires its cookie.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		a.sessions.delete(c.Value)
	}
	http.SetCookie(w, cookie("", -1))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// whoami tells machines which server answered and who is logged in.
func (a *App) whoami(w http.ResponseWriter, r *http.Request) {
	user, _ := a.user(r)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "server=%s user=%s\n", a.name, user)
}

// user returns the user of r's session ("" if not logged in) and whether r
// has a session this App knows.
func (a *App) user(r *http.Request) (string, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return "", false
	}
	return a.sessions.user(c.Value)
}

// cookie returns the session cookie carrying id; maxAge < 0 deletes it,
// 0 makes it last until the browser closes.
func cookie(id string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     SessionCookie,
		Value:    id,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// allow reports whether r's method is one of methods, answering 405 if not.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
	return false
}

// validName reports whether name is 1 to MaxNameLen printable characters of
// valid UTF-8.
func validName(name string) bool {
	if !utf8.ValidString(name) {
		return false
	}
	if n := utf8.RuneCountInString(name); n < 1 || n > MaxNameLen {
		return false
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
