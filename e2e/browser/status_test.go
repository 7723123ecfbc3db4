package browser

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// screenshotDirEnv names the directory the status page's screenshot is
// copied to, to look at after the test; by default a directory in
// os.TempDir.
const screenshotDirEnv = "AFFINITY_SCREENSHOT_DIR"

// get sends GET url with c and returns the status and the body.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestStatusPage sends traffic through stickyproxy, opens the status page
// on its admin listener in a browser, and checks what a person would see
// there: a row for each backend, a chart with lines, and a page that
// renders to a screenshot that is not blank.
func TestStatusPage(t *testing.T) {
	chromiumPath(t) // skip before building and starting anything
	p := startProxy(t)
	plain := &http.Client{Timeout: 5 * time.Second}
	if status, _ := get(t, plain, p.admin+"/"); status == http.StatusNotFound {
		t.Skip("status page not wired yet: GET / on the admin listener answers 404")
	}

	// Traffic: new clients spread over the three apps, then stay; each
	// sends more than the one before, so that the chart's lines differ.
	for i := range 6 {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
		for range 2 * (i + 1) {
			status, _ := get(t, c, p.url+"/whoami")
			require.Equal(t, http.StatusOK, status)
		}
	}

	ctx := newBrowser(t)
	facts, shot := readStatusPage(t, ctx, p.admin+"/")
	assert.ElementsMatch(t, []string{"app1", "app2", "app3"}, facts.Rows, "rows of #backends")
	assert.True(t, facts.Chart, "no <svg id=rps-chart>")
	assert.GreaterOrEqual(t, facts.Lines, 1, "lines in #rps-chart")

	path := filepath.Join(t.TempDir(), "status.png")
	require.NoError(t, os.WriteFile(path, shot, 0o644))
	t.Logf("status page screenshot: %s", path)
	keepScreenshot(t, shot)
	checkScreenshot(t, shot)
}

// keepScreenshot copies shot to status.png in $AFFINITY_SCREENSHOT_DIR, or
// in a directory of os.TempDir, where it outlives the test.
func keepScreenshot(t *testing.T, shot []byte) {
	t.Helper()
	dir := os.Getenv(screenshotDirEnv)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "affinity-e2e-browser")
	}
	kept := filepath.Join(dir, "status.png")
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = os.WriteFile(kept, shot, 0o644)
	}
	if err != nil {
		t.Logf("screenshot not kept: %v", err)
		return
	}
	t.Logf("screenshot kept at %s", kept)
}

// statusFacts is what the status page shows, read from its DOM.
type statusFacts struct {
	Rows  []string `json:"rows"`  // the first cell of each row of #backends
	Lines int      `json:"lines"` // polylines and paths in #rps-chart
	Chart bool     `json:"chart"` // whether #rps-chart is an svg element
}

// readStatusPage loads the status page at url in ctx's tab, and returns
// what it shows and a full-page screenshot, in PNG, both of the same
// load. The page reloads itself every 5 seconds: when it did while being
// read, readStatusPage loads it again, 3 times at most.
func readStatusPage(t *testing.T, ctx context.Context, url string) (statusFacts, []byte) {
	t.Helper()
	var err error
	for range 3 {
		resp, nerr := chromedp.Run(ctx, chromedp.NavigateResponse(url))
		require.NoError(t, nerr)
		require.Equal(t, int64(200), resp.Status)
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#backends"))))
		// One evaluation reads the whole DOM at once, and marks the
		// document, to tell whether it is still there after the
		// screenshot.
		var facts statusFacts
		facts, err = chromedp.Run(ctx, chromedp.Evaluate[statusFacts](`(() => {
			window.e2eRead = true;
			return {
				rows: Array.from(document.querySelectorAll("#backends tbody tr"), r => r.cells[0].textContent.trim()),
				lines: document.querySelectorAll("#rps-chart polyline, #rps-chart path").length,
				chart: document.querySelector("svg#rps-chart") !== null,
			};
		})()`))
		if err != nil {
			t.Logf("reading the status page: %v; loading it again", err)
			continue
		}
		var shot []byte
		shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Logf("screenshot of the status page: %v; loading it again", err)
			continue
		}
		var same bool
		if same, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`window.e2eRead === true`)); err == nil && same {
			return facts, shot
		}
		t.Logf("the status page reloaded itself while being read (%v); loading it again", err)
	}
	require.Fail(t, "could not read the status page in 3 loads: it failed, or reloaded itself while being read", "last error: %v", err)
	return statusFacts{}, nil
}

// checkScreenshot checks that shot is a PNG of a page with something on
// it: a reasonable size, several colours, and not nearly all one colour.
func checkScreenshot(t *testing.T, shot []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	require.NoError(t, err, "the screenshot is not a PNG")
	b := img.Bounds()
	assert.GreaterOrEqual(t, b.Dx(), 640, "screenshot width")
	assert.GreaterOrEqual(t, b.Dy(), 400, "screenshot height")
	counts := map[[4]uint32]int{}
	samples := 0
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			counts[[4]uint32{r, g, bl, a}]++
			samples++
		}
	}
	most := 0
	for _, n := range counts {
		most = max(most, n)
	}
	assert.GreaterOrEqual(t, len(counts), 16, "distinct colours in the screenshot: a blank page?")
	assert.Less(t, float64(most)/float64(samples), 0.99, "share of the commonest colour: a blank page?")
	t.Logf("screenshot %dx%d, %d bytes; %d colours sampled, the commonest %.1f%%",
		b.Dx(), b.Dy(), len(shot), len(counts), 100*float64(most)/float64(samples))
}
