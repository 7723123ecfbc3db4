package browser

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/sticky"
)

// wsPage opens a WebSocket to the host that served it, sends "who", and
// shows the reply in <pre id="ws"> and in document.body.dataset.ws, or why
// there is none.
var wsPage = template.Must(template.New("ws").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.}}</title></head>
<body>
<p id="page">{{.}}</p>
<pre id="ws"></pre>
<script>
function show(s) {
	document.getElementById("ws").textContent = s;
	document.body.dataset.ws = s;
}
const ws = new WebSocket("ws://" + location.host + "/ws");
ws.onopen = () => ws.send("who");
ws.onmessage = (e) => show(e.data);
ws.onclose = (e) => { if (!document.body.dataset.ws) show("closed " + e.code); };
</script>
</body>
</html>
`))

// wsApp is a backend: / serves wsPage, /ws answers each message with the
// app's name, and accepts upgrades from pages of origin (host:port).
type wsApp struct {
	name     string
	origin   string
	upgrades atomic.Int64 // WebSocket connections accepted
}

func (a *wsApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Served-By", a.name)
	switch r.URL.Path {
	case "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		wsPage.Execute(w, a.name)
	case "/ws":
		// The handler forwards with the backend's Host, so the page's
		// origin, the proxy's, must be allowed by name.
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{a.origin}})
		if err != nil {
			return // Accept has answered
		}
		defer c.CloseNow()
		a.upgrades.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			reply := a.name
			if string(msg) != "who" {
				reply = fmt.Sprintf("%s: unexpected %q", a.name, msg)
			}
			if err := c.Write(ctx, websocket.MessageText, []byte(reply)); err != nil {
				return
			}
		}
	default:
		http.NotFound(w, r)
	}
}

// loadWS loads url in ctx's tab, or reloads the page when url is "", and
// returns the app that served the page and the app that answered its
// WebSocket.
func loadWS(t *testing.T, ctx context.Context, url string) (page, ws string) {
	t.Helper()
	load := chromedp.Reload()
	if url != "" {
		load = chromedp.Navigate(url)
	}
	require.NoError(t, chromedp.Do(ctx, load))
	return shownWS(t, ctx)
}

// shownWS returns what the page in ctx's tab shows, once its WebSocket has
// answered: the app that served the page and the app that answered.
func shownWS(t *testing.T, ctx context.Context) (page, ws string) {
	t.Helper()
	page, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#page")))
	require.NoError(t, err)
	ws, err = chromedp.Run(ctx, chromedp.Poll[string](`document.body.dataset.ws`, chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "no WebSocket reply on the page from %s", page)
	return page, ws
}

// TestWebSocketStaysOnBoundBackend loads, in a browser, a page whose
// script opens a WebSocket back to its host, through a sticky.Handler with
// the cookie policy: the WebSocket's upgrade request carries the cookie the
// page's response set, and reaches the app that served the page, load
// after load.
func TestWebSocketStaysOnBoundBackend(t *testing.T) {
	chromiumPath(t) // skip before starting anything

	// The front server listens already: its address is the pages' origin.
	front := httptest.NewUnstartedServer(nil)
	t.Cleanup(front.Close)
	origin := front.Listener.Addr().String()

	apps := map[string]*wsApp{}
	var cfgs []backend.Config
	for i := 1; i <= 3; i++ {
		app := &wsApp{name: fmt.Sprintf("app%d", i), origin: origin}
		srv := httptest.NewServer(app)
		t.Cleanup(srv.Close)
		apps[app.name] = app
		cfgs = append(cfgs, backend.Config{ID: app.name, URL: srv.URL})
	}
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	pol, err := cookie.New([][]byte{[]byte(testKey)})
	require.NoError(t, err)
	h, err := sticky.New(set, pol)
	require.NoError(t, err)
	front.Config.Handler = h
	front.Start()

	ctx := newBrowser(t)
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(front.URL+"/"))
	require.NoError(t, err)
	require.Equal(t, int64(200), resp.Status)
	home, _ := resp.Headers["X-Served-By"].(string)
	require.Contains(t, apps, home, "X-Served-By of the first page")
	page, ws := shownWS(t, ctx)
	assert.Equal(t, home, page, "first load: page")
	assert.Equal(t, home, ws, "first load: WebSocket")

	const reloads = 5
	for i := range reloads {
		url := "" // a reload...
		if i%2 == 1 {
			url = front.URL + "/" // ...or a navigation to the same page
		}
		page, ws := loadWS(t, ctx, url)
		assert.Equal(t, home, page, "reload %d: page", i)
		assert.Equal(t, home, ws, "reload %d: WebSocket", i)
	}
	for name, app := range apps {
		want := int64(0)
		if name == home {
			want = 1 + reloads
		}
		assert.Equal(t, want, app.upgrades.Load(), "WebSockets accepted by %s", name)
	}

	// A second browser, its own cookie jar, while the first one's
	// WebSocket stays open: least connections places it on another app,
	// and its WebSocket follows it there.
	other, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	page, ws = loadWS(t, other, front.URL+"/")
	assert.NotEqual(t, home, page, "the second browser joined the first one's app, busy with its WebSocket")
	assert.Equal(t, page, ws, "second browser: WebSocket")
	page, ws = loadWS(t, ctx, "")
	assert.Equal(t, home, page, "first browser, after the second came")
	assert.Equal(t, home, ws, "first browser's WebSocket, after the second came")
}
