package metrics

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
)

// start is the fake clock's first reading: a whole second.
var start = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// clock is a fake clock for a Recorder.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

// withClock makes r read c, set to start.
func withClock(r *Recorder) *clock {
	c := &clock{}
	c.ns.Store(start.UnixNano())
	r.now = c.now
	return c
}

// newSet returns a set of backends with the given IDs, at unused
// addresses: enough to make events about them.
func newSet(t *testing.T, ids ...string) *backend.Set {
	t.Helper()
	cfgs := make([]backend.Config, len(ids))
	for i, id := range ids {
		cfgs[i] = backend.Config{ID: id, URL: fmt.Sprintf("http://127.0.0.1:%d", 1+i)}
	}
	set, err := backend.NewSet(cfgs, backend.WithEjection(backend.Ejection{}))
	require.NoError(t, err)
	return set
}

// ev returns an event of kind about the backend id, and prev if not
// empty.
func ev(kind event.Kind, id, prev string) event.Event {
	return event.Event{Kind: kind, Backend: id, Prev: prev}
}

// newRecorder returns a Recorder reporting on set, failing the test if
// New does.
func newRecorder(t testing.TB, set *backend.Set, opts ...Option) *Recorder {
	t.Helper()
	r, err := New(set, opts...)
	require.NoError(t, err)
	return r
}

// parsed is an exposition read back by parseExposition.
type parsed struct {
	families []*family
	series   map[string]float64 // by name{canonical labels}
}

type family struct {
	name, typ, help string
	samples         int
}

// get returns the value of a series, labels given as name, value pairs;
// it fails the test if there is none.
func (p *parsed) get(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	key := seriesKey(name, pairs(labels))
	v, ok := p.series[key]
	require.True(t, ok, "no series %s", key)
	return v
}

// has reports whether the series exists.
func (p *parsed) has(name string, labels ...string) bool {
	_, ok := p.series[seriesKey(name, pairs(labels))]
	return ok
}

// sum returns the total of a metric's series whose labels include the
// given pairs.
func (p *parsed) sum(name string, labels ...string) float64 {
	var n float64
	for key, v := range p.series {
		if strings.HasPrefix(key, name+"{") || key == name {
			ok := true
			for i := 0; i+1 < len(labels); i += 2 {
				ok = ok && strings.Contains(key, labels[i]+"="+strconv.Quote(labels[i+1]))
			}
			if ok {
				n += v
			}
		}
	}
	return n
}

func pairs(labels []string) [][2]string {
	var ps [][2]string
	for i := 0; i+1 < len(labels); i += 2 {
		ps = append(ps, [2]string{labels[i], labels[i+1]})
	}
	return ps
}

// seriesKey names a series canonically: labels sorted, values quoted.
func seriesKey(name string, labels [][2]string) string {
	if len(labels) == 0 {
		return name
	}
	slices.SortFunc(labels, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = l[0] + "=" + strconv.Quote(l[1])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	types      = []string{"counter", "gauge", "histogram", "summary", "untyped"}
)

// parseExposition reads the text exposition format, version 0.0.4,
// failing the test on anything that does not follow it: every family has
// HELP then TYPE before its samples, and no samples anywhere else; sample
// lines are name{labels} value; label values use only the format's
// escapes; no series appears twice.
func parseExposition(t *testing.T, text string) *parsed {
	t.Helper()
	p := &parsed{series: map[string]float64{}}
	require.True(t, strings.HasSuffix(text, "\n"), "the exposition ends with a line feed")
	var cur *family
	seen := map[string]bool{}
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		where := fmt.Sprintf("line %d: %q", n+1, line)
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, help, ok := strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			require.True(t, ok, where)
			require.Regexp(t, metricName, name, where)
			require.False(t, seen[name], "%s: family declared twice", where)
			seen[name] = true
			require.NotContains(t, strings.NewReplacer(`\\`, "", `\n`, "").Replace(help), `\`, "%s: HELP escapes only backslash and line feed", where)
			cur = &family{name: name, help: help}
			p.families = append(p.families, cur)
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, ok := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			require.True(t, ok, where)
			require.NotNil(t, cur, "%s: TYPE before HELP", where)
			require.Equal(t, cur.name, name, "%s: TYPE right after its HELP", where)
			require.Empty(t, cur.typ, "%s: second TYPE", where)
			require.Contains(t, types, typ, where)
			cur.typ = typ
		case strings.HasPrefix(line, "#") || line == "":
			t.Fatalf("%s: unexpected comment or blank line", where)
		default:
			require.NotNil(t, cur, "%s: sample before any HELP", where)
			require.NotEmpty(t, cur.typ, "%s: sample before its TYPE", where)
			name, labels, value := parseSample(t, line, where)
			if cur.typ == "histogram" {
				base, suffix := histogramSample(name)
				require.Equal(t, cur.name, base, "%s: sample outside its family", where)
				if suffix == "_bucket" {
					require.True(t, slices.ContainsFunc(labels, func(l [2]string) bool { return l[0] == "le" }), "%s: bucket without le", where)
				}
			} else {
				require.Equal(t, cur.name, name, "%s: sample outside its family", where)
			}
			if cur.typ == "counter" {
				require.True(t, strings.HasSuffix(name, "_total"), "%s: counter without _total", where)
				require.GreaterOrEqual(t, value, 0.0, where)
			}
			key := seriesKey(name, labels)
			_, dup := p.series[key]
			require.False(t, dup, "%s: series repeated", where)
			p.series[key] = value
			cur.samples++
		}
	}
	return p
}

// histogramSample splits the name of a histogram's sample into its
// family's name and its suffix, _bucket, _sum or _count; a name with none
// of them is returned whole, with no suffix.
func histogramSample(name string) (family, suffix string) {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			return base, suffix
		}
	}
	return name, ""
}

// parseSample reads name{l="v",...} value.
func parseSample(t *testing.T, line, where string) (string, [][2]string, float64) {
	t.Helper()
	i := strings.IndexAny(line, "{ ")
	require.Positive(t, i, where)
	name, rest := line[:i], line[i:]
	require.Regexp(t, metricName, name, where)
	var labels [][2]string
	names := map[string]bool{}
	if rest[0] == '{' {
		rest = rest[1:]
		for rest != "" && rest[0] != '}' {
			eq := strings.IndexByte(rest, '=')
			require.Positive(t, eq, where)
			ln := rest[:eq]
			require.Regexp(t, labelName, ln, where)
			require.False(t, names[ln], "%s: label %s twice", where, ln)
			names[ln] = true
			rest = rest[eq+1:]
			require.True(t, strings.HasPrefix(rest, `"`), "%s: label value not quoted", where)
			var val strings.Builder
			j := 1
			for ; j < len(rest) && rest[j] != '"'; j++ {
				c := rest[j]
				if c == '\\' {
					j++
					require.Less(t, j, len(rest), where)
					switch rest[j] {
					case '\\':
						c = '\\'
					case '"':
						c = '"'
					case 'n':
						c = '\n'
					default:
						t.Fatalf("%s: bad escape \\%c", where, rest[j])
					}
				}
				val.WriteByte(c)
			}
			require.Less(t, j, len(rest), "%s: unterminated label value", where)
			labels = append(labels, [2]string{ln, val.String()})
			rest = rest[j+1:]
			rest = strings.TrimPrefix(rest, ",")
		}
		require.True(t, strings.HasPrefix(rest, "}"), "%s: unterminated labels", where)
		rest = rest[1:]
	}
	require.True(t, strings.HasPrefix(rest, " "), "%s: no space before the value", where)
	fields := strings.Fields(rest)
	require.NotEmpty(t, fields, where)
	require.LessOrEqual(t, len(fields), 2, "%s: value and at most a timestamp", where)
	v, err := strconv.ParseFloat(fields[0], 64)
	require.NoError(t, err, where)
	return name, labels, v
}
