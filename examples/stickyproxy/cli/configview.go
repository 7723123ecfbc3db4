package cli

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/affinitylb/affinity/backend"
)

// runningConfig is the proxy's configuration as the admin API shows it,
// at GET /config and on the status page: what decides where clients go,
// the groups' weights, the health checks, the version and the uptime. It
// holds no secret:
// neither the signing keys (only how many, and where they came from) nor
// the admin token.
type runningConfig struct {
	Version       string        `json:"version"`
	StartedAt     time.Time     `json:"started_at"`
	Uptime        string        `json:"uptime"` // a Go duration, to the second
	UptimeSeconds int64         `json:"uptime_seconds"`
	TLS           bool          `json:"tls"` // HTTPS on -listen (-tls-cert)
	H2C           bool          `json:"h2c"` // cleartext HTTP/2 on -listen (-h2c)
	Policy        string        `json:"policy"`
	Picker        string        `json:"picker"`
	Groups        []groupJSON   `json:"groups"`           // now, by name: PUT /groups/{name} changes weights
	Cookie        *cookieConfig `json:"cookie,omitempty"` // cookie and appcookie only
	Key           *keyConfig    `json:"key,omitempty"`    // header, query and ip only
	Trusted       []string      `json:"trusted_proxies"`  // whose forwarding headers are believed
	HealthCheck   *healthConfig `json:"health_check"`     // null: no active health checks
	EjectStatus   string        `json:"eject_status"`     // ranges, "500-599,429"; "": none
	Retries       int           `json:"retries"`          // 0 with strict bindings
	SlowStart     string        `json:"slow_start"`
	StallTimeout  string        `json:"stall_timeout"` // "0s": off
	BodyTimeout   string        `json:"body_timeout"`
	WriteTimeout  string        `json:"write_timeout"`
	LogLevel      string        `json:"log_level"`
	AccessLog     bool          `json:"access_log"`
}

// cookieConfig is the affinity cookie's settings.
type cookieConfig struct {
	Name        string `json:"name"`
	Lifetime    string `json:"lifetime"`          // the rules below, in words
	TTL         string `json:"ttl,omitempty"`     // cookie only; "0s": a session cookie
	Sliding     *bool  `json:"sliding,omitempty"` // cookie only
	MaxLife     string `json:"max_life"`          // "0s": no cap
	AppCookie   string `json:"app_cookie,omitempty"`
	Strict      bool   `json:"strict"`
	SigningKeys int    `json:"signing_keys"` // how many, the first signing
	KeySource   string `json:"key_source"`   // -key, -key-file, STICKYPROXY_KEY or random
	Secure      string `json:"secure"`       // auto, always or never
	SameSite    string `json:"samesite"`     // lax, strict or none
	Path        string `json:"path,omitempty"`
	Domain      string `json:"domain,omitempty"`
	Partitioned bool   `json:"partitioned"`
	CORS        bool   `json:"cors"` // the SameSite=None twin, NAME-cors
}

// keyConfig is the settings of the key policies.
type keyConfig struct {
	Header         string   `json:"header,omitempty"`
	Query          string   `json:"query,omitempty"`
	TrustedProxies []string `json:"trusted_proxies,omitempty"`
	LoadFactor     float64  `json:"load_factor"` // 0: keys never spill
}

// healthConfig is the active health checks' settings, defaults filled in.
type healthConfig struct {
	Path      string `json:"path"`
	Interval  string `json:"interval"`
	Timeout   string `json:"timeout"`
	Rise      int    `json:"rise"`
	Fall      int    `json:"fall"`
	MinStatus int    `json:"min_status"`
	MaxStatus int    `json:"max_status"`
}

// newRunningConfig returns cfg as the admin API shows it, for a proxy
// started at started.
func newRunningConfig(cfg config, started time.Time) *runningConfig {
	rc := &runningConfig{
		Version:      version(),
		StartedAt:    started.UTC().Truncate(time.Second),
		TLS:          cfg.cert != nil,
		H2C:          cfg.h2c,
		Policy:       cfg.policy,
		Picker:       cfg.picker,
		EjectStatus:  cfg.ejectStatus.String(),
		Retries:      defaultRetries,
		SlowStart:    cfg.slowStart.String(),
		StallTimeout: backend.DefaultStallTimeout.String(),
		BodyTimeout:  cfg.bodyTimeout.String(),
		WriteTimeout: cfg.writeTimeout.String(),
		LogLevel:     strings.ToLower(cfg.logLevel.String()),
		AccessLog:    cfg.accessLog,
	}
	rc.Trusted = []string{}
	for _, p := range cfg.trusted {
		rc.Trusted = append(rc.Trusted, p.String())
	}
	switch {
	case cfg.strict: // strict bindings are never retried
		rc.Retries = 0
	case cfg.retries != nil:
		rc.Retries = *cfg.retries
	}
	if cfg.stallTimeout != nil {
		rc.StallTimeout = cfg.stallTimeout.String()
	}
	if cfg.usesCookie() {
		c := &cookieConfig{
			Name: cmp.Or(cfg.cookieName, defaultCookieName), MaxLife: cfg.cookieMaxLife.String(),
			AppCookie: cfg.appCookie, Strict: cfg.strict, SigningKeys: len(cfg.keys), KeySource: cfg.keySource,
		}
		if cfg.policy == policyCookie {
			sliding := cfg.cookieSliding
			c.TTL, c.Sliding = cfg.cookieTTL.String(), &sliding
		}
		c.Lifetime = lifetime(cfg)
		a := cfg.cookieAttrs
		c.Path, c.Domain, c.Partitioned, c.CORS = a.path, a.domain, a.partitioned, a.cors
		for name, m := range cookieSecureModes {
			if m == a.secure {
				c.Secure = name
			}
		}
		c.SameSite = "lax"
		for name, ss := range cookieSameSites {
			if a.sameSite == ss {
				c.SameSite = name
			}
		}
		rc.Cookie = c
	} else {
		k := &keyConfig{Header: cfg.header, Query: cfg.query, LoadFactor: cfg.loadFactor}
		k.TrustedProxies = rc.Trusted
		rc.Key = k
	}
	if cfg.healthPath != "" {
		hc, _ := healthCheck(cfg).Effective() // valid: parseFlags checked it
		rc.HealthCheck = &healthConfig{
			Path: hc.Path, Interval: hc.Interval.String(), Timeout: hc.Timeout.String(),
			Rise: hc.Rise, Fall: hc.Fall, MinStatus: hc.MinStatus, MaxStatus: hc.MaxStatus,
		}
	}
	return rc
}

// healthCheck returns the active health checks the health flags ask for,
// without a logger or TLS settings; its zero fields are the library's
// defaults.
func healthCheck(cfg config) backend.HealthCheck {
	return backend.HealthCheck{
		Path: cfg.healthPath, Interval: cfg.healthInterval,
		Timeout: cfg.healthTimeout, Rise: cfg.healthRise, Fall: cfg.healthFall,
		MinStatus: cfg.healthMinStatus, MaxStatus: cfg.healthMaxStatus,
	}
}

// lifetime says in words how long cfg's affinity cookie binds a client.
func lifetime(cfg config) string {
	var s string
	switch {
	case cfg.policy == policyAppCookie:
		s = "as long as the application's cookie " + cfg.appCookie
	case cfg.cookieTTL == 0:
		s = "a session cookie, until the browser closes"
	case cfg.cookieSliding:
		s = cfg.cookieTTL.String() + " from the client's last request"
	default:
		s = cfg.cookieTTL.String() + " from the binding"
	}
	if cfg.cookieMaxLife > 0 {
		s += ", at most " + cfg.cookieMaxLife.String() + " in all"
	}
	return s
}

// at returns rc with its uptime at now and the groups of snap.
func (rc *runningConfig) at(now time.Time, snap *backend.Snapshot) runningConfig {
	c := *rc
	c.Groups = groupsJSON(snap)
	up := max(now.Sub(rc.StartedAt), 0).Truncate(time.Second)
	c.Uptime, c.UptimeSeconds = up.String(), int64(up/time.Second)
	return c
}

// rows returns c as the status page's table shows it: a name and a value
// a row.
func (rc runningConfig) rows() [][2]string {
	rows := [][2]string{
		{"Version", rc.Version},
		{"Started", rc.StartedAt.Format(time.RFC3339) + ", up " + rc.Uptime},
		{"Listener", listener(rc.TLS, rc.H2C)},
		{"Policy", rc.Policy},
		{"Picker", rc.Picker},
	}
	for _, g := range rc.Groups {
		rows = append(rows, [2]string{"Group " + cmp.Or(g.Name, "(default)"), groupText(g)})
	}
	if k := rc.Cookie; k != nil {
		rows = append(rows,
			[2]string{"Cookie", k.Name},
			[2]string{"Cookie lifetime", k.Lifetime},
			[2]string{"Strict bindings", strconv.FormatBool(k.Strict)},
			[2]string{"Signing keys", fmt.Sprintf("%d, from %s", k.SigningKeys, k.KeySource)},
			[2]string{"Cookie attributes", cookieAttrText(k)},
		)
	}
	rows = append(rows, [2]string{"Trusted proxies", cmp.Or(strings.Join(rc.Trusted, ", "), "none")})
	if k := rc.Key; k != nil {
		if k.Header != "" {
			rows = append(rows, [2]string{"Key header", k.Header})
		}
		if k.Query != "" {
			rows = append(rows, [2]string{"Key query parameter", k.Query})
		}
		rows = append(rows, [2]string{"Load factor", cmp.Or(strconv.FormatFloat(k.LoadFactor, 'g', -1, 64), "0")})
	}
	if h := rc.HealthCheck; h != nil {
		rows = append(rows, [2]string{"Health checks", fmt.Sprintf("GET %s every %s, timeout %s; %d-%d pass; down after %d failures, up after %d passes",
			h.Path, h.Interval, h.Timeout, h.MinStatus, h.MaxStatus, h.Fall, h.Rise)})
	} else {
		rows = append(rows, [2]string{"Health checks", "off"})
	}
	return append(rows,
		[2]string{"Eject status", cmp.Or(rc.EjectStatus, "none")},
		[2]string{"Retries", strconv.Itoa(rc.Retries)},
		[2]string{"Slow start", rc.SlowStart},
		[2]string{"Stall timeout", rc.StallTimeout},
		[2]string{"Body timeout", rc.BodyTimeout},
		[2]string{"Write timeout", rc.WriteTimeout},
		[2]string{"Log level", rc.LogLevel},
		[2]string{"Access log", strconv.FormatBool(rc.AccessLog)},
	)
}

// groupText says in words what a group weighs and holds.
func groupText(g groupJSON) string {
	s := "weight " + strconv.Itoa(g.Weight)
	if g.Weight == 0 {
		s += " (no new clients)"
	}
	if len(g.Backends) == 0 {
		return s + "; no backends"
	}
	return s + "; backends " + strings.Join(g.Backends, ", ")
}

// listener says in words what -listen serves.
func listener(tls, h2c bool) string {
	switch {
	case tls:
		return "HTTPS: HTTP/2 and HTTP/1.1"
	case h2c:
		return "HTTP/1.1 and cleartext HTTP/2 (h2c)"
	}
	return "HTTP/1.1"
}

// String returns l as ranges, "500-599,429"; "" if l is empty.
func (l statusList) String() string {
	var parts []string
	for _, r := range l {
		if r.lo == r.hi {
			parts = append(parts, strconv.Itoa(r.lo))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r.lo, r.hi))
		}
	}
	return strings.Join(parts, ",")
}

// configTemplate is the status page's configuration section.
var configTemplate = template.Must(template.New("config").Parse(`<section id="config">
<h2>Configuration</h2>
<table id="config-table">
<tbody>
{{- range .}}
<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
`))

// serveConfig returns the handler of GET /config: the running
// configuration, with the groups of set.
func (rc *runningConfig) serveConfig(set *backend.Set) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, rc.at(time.Now(), set.Snapshot()))
	}
}

// withConfig returns status, the status page's handler, adding rc, with
// the groups of set, to its answers: a section before the footer of the
// HTML page, a "config" field in the JSON one. Other answers pass as they
// are.
func (rc *runningConfig) withConfig(status http.Handler, set *backend.Set) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := &bufferedResponse{header: w.Header()}
		status.ServeHTTP(buf, r)
		body := buf.body.Bytes()
		if buf.status == 0 || buf.status == http.StatusOK {
			c := rc.at(time.Now(), set.Snapshot())
			switch ct := w.Header().Get("Content-Type"); {
			case strings.HasPrefix(ct, "text/html"):
				body = addHTML(body, c)
			case strings.HasPrefix(ct, "application/json"):
				body = addJSON(body, c)
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(cmp.Or(buf.status, http.StatusOK))
		w.Write(body) // an error means the client left
	})
}

// addHTML returns page with c's section before its footer, else before
// </body>, else at its end.
func addHTML(page []byte, c runningConfig) []byte {
	var sec bytes.Buffer
	if err := configTemplate.Execute(&sec, c.rows()); err != nil {
		return page // a bug: the data is ours
	}
	i := bytes.Index(page, []byte("<footer"))
	if i < 0 {
		i = bytes.LastIndex(page, []byte("</body>"))
	}
	if i < 0 {
		i = len(page)
	}
	return slices.Concat(page[:i], sec.Bytes(), page[i:])
}

// addJSON returns obj, a JSON object, with a "config" field holding c;
// obj itself if it is not an object.
func addJSON(obj []byte, c runningConfig) []byte {
	t := bytes.TrimRight(obj, " \t\r\n")
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return obj
	}
	v, err := json.Marshal(c)
	if err != nil {
		return obj
	}
	sep := ","
	if len(bytes.TrimSpace(t[1:len(t)-1])) == 0 {
		sep = ""
	}
	return slices.Concat(t[:len(t)-1], []byte(sep+`"config":`), v, []byte("}\n"))
}

// bufferedResponse is a ResponseWriter that keeps the body, for
// withConfig to edit; the header is the real one's.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// cookieAttrText says in words which attributes the affinity cookie has.
func cookieAttrText(k *cookieConfig) string {
	s := "Secure " + k.Secure + ", SameSite " + k.SameSite
	if k.Path != "" {
		s += ", Path " + k.Path
	}
	if k.Domain != "" {
		s += ", Domain " + k.Domain
	}
	if k.Partitioned {
		s += ", Partitioned"
	}
	if k.CORS {
		s += ", with a SameSite=None twin " + k.Name + "-cors"
	}
	return s
}
