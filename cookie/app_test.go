package cookie_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
)

func newApp(t testing.TB, keys [][]byte, opts ...cookie.Option) *cookie.App {
	t.Helper()
	a, err := cookie.NewApp("PHPSESSID", keys, opts...)
	require.NoError(t, err)
	return a
}

// appSave calls a.Save on a response carrying the given Set-Cookie lines
// and returns the lines it added, after checking it left those alone.
func appSave(t *testing.T, a *cookie.App, r *http.Request, b string, prev policy.Binding, lines ...string) []string {
	t.Helper()
	resp := &http.Response{Header: http.Header{}}
	for _, l := range lines {
		resp.Header.Add("Set-Cookie", l)
	}
	a.Save(r, resp, newSet(t).Snapshot().Lookup(b), prev)
	got := resp.Header.Values("Set-Cookie")
	require.GreaterOrEqual(t, len(got), len(lines))
	if len(lines) > 0 {
		assert.Equal(t, lines, got[:len(lines)], "the application's lines, byte for byte")
	}
	return got[len(lines):]
}

func TestAppFollowsLifetime(t *testing.T) {
	httpDate := func(d time.Duration) string { return t0.Add(d).Format(http.TimeFormat) }
	const (
		kept    = -2 // no balancer cookie added
		deleted = -1
		session = 0
	)
	tests := []struct {
		name  string
		skew  time.Duration // of the clock past t0
		lines []string      // the application's Set-Cookie lines
		want  int64         // the balancer cookie's Max-Age, or kept, deleted or session
	}{
		{"Max-Age", 0, []string{"PHPSESSID=abc; Path=/; Max-Age=120; HttpOnly"}, 120},
		{"Max-Age wins over Expires", 0, []string{"PHPSESSID=abc; Expires=" + httpDate(-time.Hour) + "; Max-Age=60"}, 60},
		{"Max-Age over 400 days", 0, []string{"PHPSESSID=abc; Max-Age=99999999"}, 400 * 24 * 3600},
		{"Expires", 0, []string{"PHPSESSID=abc; Expires=" + httpDate(time.Hour)}, 3600},
		{"Expires, old date format", 0, []string{"PHPSESSID=abc; expires=" + t0.Add(time.Hour).Format("Mon, 02-Jan-2006 15:04:05 MST")}, 3600},
		{"Expires rounded down", 500 * time.Millisecond, []string{"PHPSESSID=abc; Expires=" + httpDate(10*time.Second)}, 9},
		{"Expires within a second", 500 * time.Millisecond, []string{"PHPSESSID=abc; Expires=" + httpDate(time.Second)}, 1},
		{"session", 0, []string{"PHPSESSID=abc; Path=/; HttpOnly"}, session},
		{"unreadable Expires is a session", 0, []string{"PHPSESSID=abc; Expires=tomorrow"}, session},
		{"Max-Age=0", 0, []string{"PHPSESSID=; Max-Age=0"}, deleted},
		{"negative Max-Age", 0, []string{"PHPSESSID=x; Max-Age=-1"}, deleted},
		{"Expires past, PHP style", 0, []string{"PHPSESSID=deleted; expires=Thu, 01-Jan-1970 00:00:01 GMT; Max-Age=0; path=/"}, deleted},
		{"Expires past", 0, []string{"PHPSESSID=abc; Expires=" + httpDate(-time.Second)}, deleted},
		{"Expires now", 0, []string{"PHPSESSID=abc; Expires=" + httpDate(0)}, deleted},
		{"value net/http refuses", 0, []string{`PHPSESSID=caf` + "\xc3\xa9" + `"x; Max-Age=60`}, 60},
		{"spaces around the name", 0, []string{" PHPSESSID =abc; Max-Age=60"}, 60},
		{"among other cookies", 0, []string{"theme=dark; Max-Age=9", "PHPSESSID=abc; Max-Age=120", "lang=en"}, 120},
		{"last wins: deleted", 0, []string{"PHPSESSID=a; Max-Age=60", "PHPSESSID=; Max-Age=0"}, deleted},
		{"last wins: set", 0, []string{"PHPSESSID=; Max-Age=0", "PHPSESSID=b; Max-Age=60"}, 60},
		{"untouched", 0, nil, kept},
		{"other cookies only", 0, []string{"theme=dark; Max-Age=60"}, kept},
		{"longer name", 0, []string{"PHPSESSIDX=abc; Max-Age=60"}, kept},
		{"shorter name", 0, []string{"PHPSESS=abc; Max-Age=60"}, kept},
		{"name without value", 0, []string{"PHPSESSID; Max-Age=60"}, kept},
		{"name in another cookie's value", 0, []string{"a=PHPSESSID=x; Max-Age=60"}, kept},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: t0.Add(tt.skew)}
			// The path given: TestAppFollowsPath has the others.
			a := newApp(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithPath("/"))
			added := appSave(t, a, request(), "b", policy.Binding{Status: policy.None}, tt.lines...)
			if tt.want == kept {
				assert.Empty(t, added)
				return
			}
			require.Len(t, added, 1)
			ck, err := http.ParseSetCookie(added[0])
			require.NoError(t, err)
			assert.Equal(t, "affinity", ck.Name)
			assert.Equal(t, "/", ck.Path)
			switch tt.want {
			case deleted:
				assert.Equal(t, "affinity=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax", added[0])
				return
			case session:
				assert.Zero(t, ck.MaxAge)
				assert.NotContains(t, added[0], "Expires")
			default:
				assert.Equal(t, int(tt.want), ck.MaxAge)
				wantExp := clk.now.Add(time.Duration(tt.want) * time.Second).Truncate(time.Second)
				assert.True(t, wantExp.Equal(ck.Expires), "Expires %v, want %v", ck.Expires, wantExp)
			}

			// The value is a balancer cookie binding to b, expiring when
			// the browser drops it.
			set := newSet(t)
			r := request(ck.String())
			assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, unseeded(a.Lookup(r, set.Snapshot())))
			if tt.want > 0 {
				clk.Advance(time.Duration(tt.want) * time.Second)
				assert.Equal(t, policy.Expired, a.Lookup(r, set.Snapshot()).Status)
			} else {
				clk.Advance(365 * 24 * time.Hour)
				assert.Equal(t, policy.Valid, a.Lookup(r, set.Snapshot()).Status, "a session cookie has no expiry of its own")
			}
		})
	}
}

func TestAppMaxAgeExact(t *testing.T) {
	clk := &clock{now: t0}
	a := newApp(t, [][]byte{key1}, cookie.WithClock(clk.Now))
	added := appSave(t, a, request(), "a", policy.Binding{}, "PHPSESSID=s1; Max-Age=120")
	require.Len(t, added, 1)
	assert.Regexp(t, `^affinity=[A-Za-z0-9_-]{44}; Expires=Sun, 01 Jun 2025 12:02:00 GMT; Max-Age=120; HttpOnly; SameSite=Lax$`, added[0],
		"no Path, as the application's has none")
}

// TestAppFollowsPath checks the Path of the balancer's cookie set or
// deleted after the application's: the application's, unless WithPath was
// given, so that applications on one host with a path each (Tomcat's
// contexts, say) get a binding each, and logging out of one leaves the
// other's.
func TestAppFollowsPath(t *testing.T) {
	tests := []struct {
		name     string
		opts     []cookie.Option
		line     string
		wantPath string // "" for no Path attribute
	}{
		{"root", nil, "JSESSIONID=s1; Path=/; Max-Age=60", "/"},
		{"a context", nil, "JSESSIONID=s1; Path=/a; HttpOnly", "/a"},
		{"deeper, lower case attribute", nil, "JSESSIONID=s1; path=/shop/cart/", "/shop/cart/"},
		{"deleted from a context", nil, "JSESSIONID=; Path=/b; Max-Age=0", "/b"},
		{"no Path", nil, "JSESSIONID=s1; Max-Age=60", ""},
		{"empty Path", nil, "JSESSIONID=s1; Path=; Max-Age=60", ""},
		{"relative Path", nil, "JSESSIONID=s1; Path=a; Max-Age=60", ""},
		{"the last Path", nil, "JSESSIONID=s1; Path=/a; Path=/b", "/b"},
		{"WithPath wins", []cookie.Option{cookie.WithPath("/")}, "JSESSIONID=s1; Path=/a", "/"},
		{"WithPath wins, deleted", []cookie.Option{cookie.WithPath("/x")}, "JSESSIONID=; Path=/a; Max-Age=0", "/x"},
		{"WithPath wins over none", []cookie.Option{cookie.WithPath("/x")}, "JSESSIONID=s1", "/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := cookie.NewApp("JSESSIONID", [][]byte{key1}, tt.opts...)
			require.NoError(t, err)
			added := appSave(t, a, request(), "a", policy.Binding{}, "theme=dark; Path=/z", tt.line)
			require.Len(t, added, 1)
			ck, err := http.ParseSetCookie(added[0])
			require.NoError(t, err)
			assert.Equal(t, tt.wantPath, ck.Path, "%s", added[0])
			if tt.wantPath == "" {
				assert.NotContains(t, added[0], "Path")
			}
		})
	}
}

func TestAppAttributes(t *testing.T) {
	a := newApp(t, [][]byte{key1},
		cookie.WithName("lb"), cookie.WithPath("/shop"), cookie.WithDomain("example.com"),
		cookie.WithSameSite(http.SameSiteNoneMode), cookie.WithHTTPOnly(false))
	assert.Equal(t, "lb", a.Name())
	assert.Equal(t, "PHPSESSID", a.App())

	set := appSave(t, a, request(), "a", policy.Binding{}, "PHPSESSID=s1")
	require.Len(t, set, 1)
	assert.Regexp(t, `^lb=[A-Za-z0-9_-]{44}; Path=/shop; Domain=example.com; Secure; SameSite=None$`, set[0])

	del := appSave(t, a, request(), "a", policy.Binding{}, "PHPSESSID=; Max-Age=0")
	assert.Equal(t, []string{"lb=; Path=/shop; Domain=example.com; Max-Age=0; Secure; SameSite=None"}, del,
		"deleted on the Path and Domain it was set with")
}

func TestAppBeforeTheApplication(t *testing.T) {
	set := newSet(t)
	a := newApp(t, [][]byte{key1})

	// Without an application session, nothing binds.
	for _, cookies := range []string{"", "theme=dark", "PHPSESSID=", `PHPSESSID=""; theme=dark`, "PHPSESSIDX=abc", "x=PHPSESSID=abc"} {
		r := request(cookies)
		prev := a.Lookup(r, set.Snapshot())
		assert.Equal(t, policy.Binding{Status: policy.None}, prev)
		assert.Empty(t, appSave(t, a, r, "a", prev), "%q: no balancer cookie until the application sets its own", cookies)
		assert.Empty(t, appSave(t, a, r, "a", prev, "theme=dark"), "%q", cookies)
	}
}

// TestAppTakesOverOrphans checks requests that carry the
// application's cookie but no valid binding to the backend that serves
// them, and whose response does not set the application's cookie, as PHP
// answers by default when it adopts a session ID it does not know: the
// client is bound to that backend, keeping the old binding's expiry when
// it was authentic and unexpired, so that it moves once.
func TestAppTakesOverOrphans(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	clk := &clock{now: t0}
	a := newApp(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithPath("/app"))
	issuer := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithTTL(time.Hour), cookie.WithPath("/app"))
	other := newCookie(t, [][]byte{key2}, cookie.WithClock(clk.Now))
	elsewhere, unknown, here := issuer.Issue("b"), issuer.Issue("z"), issuer.Issue("a")
	clk.Advance(-2 * time.Hour)
	expired := issuer.Issue("b")
	clk.now = t0.Add(10 * time.Minute)
	const kept = 50 * 60 // what is left of the hour the old binding had

	const untouched = -1
	tests := []struct {
		name       string
		cookies    string
		wantMaxAge int // of the new binding, 0 for a session cookie; or untouched
	}{
		{"no binding", "PHPSESSID=abc", 0},
		{"bound elsewhere", "PHPSESSID=abc; affinity=" + elsewhere, kept},
		{"bound to an unknown backend", "PHPSESSID=abc; affinity=" + unknown, kept},
		{"bound elsewhere, app cookie last", "affinity=" + elsewhere + "; theme=dark; PHPSESSID=abc", kept},
		{"bound elsewhere, quoted app cookie", `PHPSESSID="abc"; affinity=` + elsewhere, kept},
		{"forged", "PHPSESSID=abc; affinity=" + other.Issue("a"), 0},
		{"malformed", "PHPSESSID=abc; affinity=garbage", 0},
		{"expired", "PHPSESSID=abc; affinity=" + expired, 0},
		{"bound here", "PHPSESSID=abc; affinity=" + here, untouched},
		{"garbage, then bound here", "PHPSESSID=abc; affinity=garbage; affinity=" + here, untouched},
		{"bound elsewhere, no app cookie", "affinity=" + elsewhere, untouched},
		{"bound elsewhere, empty app cookie", "PHPSESSID=; affinity=" + elsewhere, untouched},
		{"empty app cookie, then one", "PHPSESSID=; PHPSESSID=abc", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(tt.cookies)
			prev := a.Lookup(r, snap)
			added := appSave(t, a, r, "a", prev, "theme=dark")
			if tt.wantMaxAge == untouched {
				assert.Empty(t, added)
				return
			}
			require.Len(t, added, 1, "bound on the response")
			ck, err := http.ParseSetCookie(added[0])
			require.NoError(t, err)
			assert.Equal(t, "/app", ck.Path, "the configured path: the request does not tell the app cookie's")
			assert.Equal(t, tt.wantMaxAge, ck.MaxAge)
			if tt.wantMaxAge > 0 {
				assert.True(t, t0.Add(time.Hour).Equal(ck.Expires), "Expires %v: the old binding's", ck.Expires)
			} else {
				assert.NotContains(t, added[0], "Expires")
			}

			// Bound to a from now on, and left so: it moved once.
			r2 := request("PHPSESSID=abc; " + ck.Name + "=" + ck.Value)
			prev2 := a.Lookup(r2, snap)
			assert.Equal(t, policy.Binding{ID: "a", Status: policy.Valid}, unseeded(prev2))
			assert.Empty(t, appSave(t, a, r2, "a", prev2, "theme=dark"))
		})
	}

	t.Run("the application sets its cookie", func(t *testing.T) {
		r := request("PHPSESSID=abc; affinity=" + elsewhere)
		added := appSave(t, a, r, "a", a.Lookup(r, snap), "PHPSESSID=new; Path=/; Max-Age=30")
		require.Len(t, added, 1)
		ck, err := http.ParseSetCookie(added[0])
		require.NoError(t, err)
		assert.Equal(t, 30, ck.MaxAge, "the application's lifetime")
		assert.Equal(t, policy.Binding{ID: "a", Status: policy.Valid}, unseeded(a.Lookup(request(ck.String()), snap)))
	})
	t.Run("the application deletes its cookie", func(t *testing.T) {
		r := request("PHPSESSID=abc; affinity=" + elsewhere)
		added := appSave(t, a, r, "a", a.Lookup(r, snap), "PHPSESSID=; Max-Age=0")
		assert.Equal(t, []string{"affinity=; Path=/app; Max-Age=0; HttpOnly; SameSite=Lax"}, added)
	})
	t.Run("no allocation reading the request", func(t *testing.T) {
		r := request("theme=dark; lang=en")
		b := snap.Lookup("a")
		resp := &http.Response{Header: http.Header{"Set-Cookie": {"theme=dark"}}}
		allocs := testing.AllocsPerRun(100, func() { a.Save(r, resp, b, policy.Binding{}) })
		assert.Zero(t, allocs)
	})
}

// TestAppDoesNotSlide checks that an App's binding is not
// refreshed for its age, sliding being the default of a Policy only: it
// lives as long as the application's cookie, and no longer.
func TestAppDoesNotSlide(t *testing.T) {
	set := newSet(t)
	clk := &clock{now: t0}
	a := newApp(t, [][]byte{key1}, cookie.WithClock(clk.Now))
	added := appSave(t, a, request(), "b", policy.Binding{}, "PHPSESSID=s1; Max-Age=120")
	require.Len(t, added, 1)
	ck, err := http.ParseSetCookie(added[0])
	require.NoError(t, err)
	r := request("PHPSESSID=s1; " + ck.String())
	for _, at := range []time.Duration{0, 60 * time.Second, 119 * time.Second} {
		clk.now = t0.Add(at)
		prev := a.Lookup(r, set.Snapshot())
		assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, unseeded(prev), "at %v", at)
		assert.Empty(t, appSave(t, a, r, "b", prev), "at %v", at)
	}
	clk.now = t0.Add(120 * time.Second)
	assert.Equal(t, policy.Expired, a.Lookup(r, set.Snapshot()).Status)
}

func TestAppSharesCookieFormat(t *testing.T) {
	set := newSet(t)
	a := newApp(t, [][]byte{key1})
	c := newCookie(t, [][]byte{key1})

	added := appSave(t, a, request(), "c", policy.Binding{}, "PHPSESSID=s1; Max-Age=60")
	require.Len(t, added, 1)
	ck, err := http.ParseSetCookie(added[0])
	require.NoError(t, err)
	// With less than half its TTL left, the Policy would refresh it.
	got := c.Lookup(request(ck.String()), set.Snapshot())
	assert.Equal(t, policy.Binding{ID: "c", Status: policy.Valid, Refresh: true}, unseeded(got), "a Policy reads an App's cookie")
	assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, unseeded(a.Lookup(request("affinity="+c.Issue("b")), set.Snapshot())), "and the other way round")
}

func TestAppKeyRotation(t *testing.T) {
	set := newSet(t)
	clk := &clock{now: t0}
	old := newApp(t, [][]byte{key1}, cookie.WithClock(clk.Now))
	rotating := newApp(t, [][]byte{key2, key1}, cookie.WithClock(clk.Now))
	rotated := newApp(t, [][]byte{key2}, cookie.WithClock(clk.Now))

	tests := []struct {
		name       string
		appLine    string        // the login response's application cookie
		wantMaxAge int           // of the re-signed cookie, 100s on
		wantExp    time.Duration // from t0, or 0 for none
	}{
		{"timed", "PHPSESSID=s1; Max-Age=600", 500, 600 * time.Second},
		{"session", "PHPSESSID=s1", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.now = t0
			// Before the rotation: the application logs the client in on c.
			login := appSave(t, old, request(), "c", policy.Binding{}, tt.appLine)
			require.Len(t, login, 1)
			ck, err := http.ParseSetCookie(login[0])
			require.NoError(t, err)
			r := request("PHPSESSID=s1; " + ck.String())

			// The new key comes first; the old one still verifies.
			clk.Advance(100 * time.Second)
			prev := rotating.Lookup(r, set.Snapshot())
			assert.Equal(t, policy.Binding{ID: "c", Status: policy.Valid, Refresh: true}, unseeded(prev))
			assert.Equal(t, policy.Forged, rotated.Lookup(r, set.Snapshot()).Status)

			// Served elsewhere, because c could not serve, the session
			// moves to a, expiring when it did.
			moved := appSave(t, rotating, r, "a", prev)
			require.Len(t, moved, 1)
			ck3, err := http.ParseSetCookie(moved[0])
			require.NoError(t, err)
			assert.Equal(t, tt.wantMaxAge, ck3.MaxAge)
			assert.Equal(t, policy.Binding{ID: "a", Status: policy.Valid}, unseeded(rotated.Lookup(request(ck3.String()), set.Snapshot())))

			// A response that leaves the application cookie alone re-signs
			// the balancer's, keeping its expiry.
			resigned := appSave(t, rotating, r, "c", prev, "theme=dark")
			require.Len(t, resigned, 1)
			ck2, err := http.ParseSetCookie(resigned[0])
			require.NoError(t, err)
			assert.Equal(t, tt.wantMaxAge, ck2.MaxAge)
			if tt.wantExp != 0 {
				assert.True(t, t0.Add(tt.wantExp).Equal(ck2.Expires), "Expires %v", ck2.Expires)
			} else {
				assert.NotContains(t, resigned[0], "Expires")
			}
			r2 := request("PHPSESSID=s1; " + ck2.String())
			assert.Equal(t, policy.Binding{ID: "c", Status: policy.Valid}, unseeded(rotated.Lookup(r2, set.Snapshot())), "signed with the new key")
			assert.Equal(t, policy.Binding{ID: "c", Status: policy.Valid}, unseeded(rotating.Lookup(r2, set.Snapshot())), "no further refresh")
			assert.Empty(t, appSave(t, rotating, r2, "c", rotating.Lookup(r2, set.Snapshot())))
			if tt.wantExp != 0 {
				clk.now = t0.Add(tt.wantExp)
				assert.Equal(t, policy.Expired, rotated.Lookup(r2, set.Snapshot()).Status, "as long-lived as before")
			}
		})
	}
	t.Run("application sets its cookie", func(t *testing.T) {
		clk.now = t0
		r := request("affinity=" + newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now)).Issue("c"))
		prev := rotating.Lookup(r, set.Snapshot())
		require.True(t, prev.Refresh)
		added := appSave(t, rotating, r, "c", prev, "PHPSESSID=s2; Max-Age=30")
		require.Len(t, added, 1)
		ck, err := http.ParseSetCookie(added[0])
		require.NoError(t, err)
		assert.Equal(t, 30, ck.MaxAge, "the application's lifetime wins")
		assert.Equal(t, policy.Valid, rotated.Lookup(request(ck.String()), set.Snapshot()).Status)
	})
	t.Run("refresh asked for but cookie gone", func(t *testing.T) {
		// prev says Refresh, but the request's cookie does not verify (a
		// caller's mistake): nothing is signed.
		prev := policy.Binding{ID: "c", Status: policy.Valid, Refresh: true}
		assert.Empty(t, appSave(t, rotating, request("affinity=garbage"), "c", prev))
		assert.Empty(t, appSave(t, rotating, request(), "c", prev))
	})
}

func TestAppNilHeader(t *testing.T) {
	set := newSet(t)
	a := newApp(t, [][]byte{key1})
	resp := &http.Response{}
	a.Save(request(), resp, set.Snapshot().Lookup("a"), policy.Binding{})
	assert.Nil(t, resp.Header, "nothing to follow, nothing written")
}

func TestNewAppErrors(t *testing.T) {
	tests := []struct {
		name    string
		app     string
		keys    [][]byte
		opts    []cookie.Option
		wantErr string
	}{
		{"WithTTL", "sid", [][]byte{key1}, []cookie.Option{cookie.WithTTL(time.Hour)}, "WithTTL(1h0m0s): does not apply to an App"},
		{"WithTTL zero", "sid", [][]byte{key1}, []cookie.Option{cookie.WithTTL(0)}, "WithTTL(0s): does not apply"},
		{"WithSliding", "sid", [][]byte{key1}, []cookie.Option{cookie.WithSliding(true)}, "WithSliding(true): does not apply to an App"},
		{"empty app name", "", [][]byte{key1}, nil, `application cookie name "": must not be empty`},
		{"app name with space", "my sid", [][]byte{key1}, nil, `application cookie name "my sid": character ' '`},
		{"app name with equals", "a=b", [][]byte{key1}, nil, `application cookie name "a=b": character '='`},
		{"app name is the default balancer name", "affinity", [][]byte{key1}, nil, `application cookie name "affinity" is also the balancer cookie's`},
		{"app name is the balancer name", "lb", [][]byte{key1}, []cookie.Option{cookie.WithName("lb")}, `"lb" is also the balancer cookie's`},
		{"no keys", "sid", nil, nil, "no signing keys"},
		{"short key", "sid", [][]byte{[]byte("short")}, nil, "keys[0] is 5 bytes"},
		{"bad balancer name", "sid", [][]byte{key1}, []cookie.Option{cookie.WithName("a b")}, `WithName("a b"): character ' '`},
		{"bad path", "sid", [][]byte{key1}, []cookie.Option{cookie.WithPath("x")}, `WithPath("x"): does not begin with '/'`},
		{"SameSite None, never Secure", "sid", [][]byte{key1}, []cookie.Option{cookie.WithSameSite(http.SameSiteNoneMode), cookie.WithSecure(cookie.SecureNever)}, "SameSite=None requires Secure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := cookie.NewApp(tt.app, tt.keys, tt.opts...)
			assert.Nil(t, a)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "cookie: "), err.Error())
		})
	}
}

// TestNewAppReportsEveryInvalidValue checks that NewApp reports the
// options that do not apply, an invalid app and the invalid options and
// keys together, one error each.
func TestNewAppReportsEveryInvalidValue(t *testing.T) {
	a, err := cookie.NewApp("my sid", nil, cookie.WithTTL(time.Hour), cookie.WithSliding(false), cookie.WithPath("x"))
	assert.Nil(t, a)
	require.Error(t, err)
	assert.Equal(t, []string{
		`cookie: WithTTL(1h0m0s): does not apply to an App: its cookie lives as long as the application's`,
		`cookie: WithSliding(false): does not apply to an App: its cookie lives as long as the application's`,
		`cookie: application cookie name "my sid": character ' ' not allowed in a token`,
		`cookie: WithPath("x"): does not begin with '/'`,
		`cookie: no signing keys; need at least one`,
	}, strings.Split(err.Error(), "\n"))
}

// TestAppMaxLifeHoldsForARollingApp checks that a binding the
// application renews on every response (a rolling session) keeps its age,
// so that WithMaxLife still ends it, and that the renewed cookie does not
// outlast it.
func TestAppMaxLifeHoldsForARollingApp(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	clk := &clock{now: t0}
	a := newApp(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithMaxLife(time.Hour))
	roll := "PHPSESSID=abc; Path=/; Max-Age=7200"
	value := func(line string) string {
		return strings.SplitN(strings.SplitN(line, ";", 2)[0], "=", 2)[1]
	}
	lines := appSave(t, a, request("PHPSESSID=abc"), "a", policy.Binding{}, roll)
	require.Len(t, lines, 1)
	assert.Contains(t, lines[0], "Max-Age=3600", "the first cookie outlasts the max life")
	bound := value(lines[0])

	clk.Advance(40 * time.Minute)
	r := request("PHPSESSID=abc; affinity=" + bound)
	b := a.Lookup(r, snap)
	require.Equal(t, policy.Valid, b.Status)
	lines = appSave(t, a, r, "a", b, roll)
	require.Len(t, lines, 1)
	assert.Contains(t, lines[0], "Max-Age=1200", "the renewed cookie outlasts the max life")
	bound = value(lines[0])

	clk.Advance(40 * time.Minute)
	assert.Equal(t, policy.Expired, a.Lookup(request("PHPSESSID=abc; affinity="+bound), snap).Status,
		"a binding made 80 minutes ago outlived a max life of an hour")
}
