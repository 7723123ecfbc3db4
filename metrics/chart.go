package metrics

import (
	"cmp"
	"math"
	"slices"
	"strconv"
)

// maxChartLines bounds how many backends the status page's chart draws:
// the busiest over the window. More lines would be unreadable.
const maxChartLines = 10

// palette colors the chart's lines (Tableau 10).
var palette = [maxChartLines]string{
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
	"#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
}

// The chart's geometry, in SVG user units: the plot area, and the margins
// around it for the axes' labels.
const (
	chartWidth, chartHeight = 640, 220
	plotLeft, plotRight     = 52, 628
	plotTop, plotBottom     = 12, 186
)

// chart is a line chart of requests per second, one line per backend,
// ready for the status page's template.
type chart struct {
	Width, Height            int
	Left, Right, Top, Bottom int
	Lines                    []chartLine
	XTicks, YTicks           []tick
	Empty                    bool // no requests in the window
	Hidden                   int  // backends not drawn, past maxChartLines
}

// chartLine is one backend's line.
type chartLine struct {
	ID     string
	Color  string
	Points string // the polyline's points attribute
}

// tick is a labelled position on an axis.
type tick struct {
	Pos   float64
	Label string
}

// newChart draws the rps series of v's backends, at most maxChartLines of
// them, the busiest; it returns the color of each backend drawn, by index
// in v.backends.
func newChart(v *view) (chart, map[int]string) {
	c := chart{
		Width: chartWidth, Height: chartHeight,
		Left: plotLeft, Right: plotRight, Top: plotTop, Bottom: plotBottom,
	}
	totals := make([]int64, len(v.backends))
	var peak int64
	for i := range v.backends {
		for _, n := range v.backends[i].rps {
			totals[i] += n
			peak = max(peak, n)
		}
	}
	drawn := make([]int, len(v.backends))
	for i := range drawn {
		drawn[i] = i
	}
	if len(drawn) > maxChartLines {
		// The busiest, then back in ID order for a stable legend.
		slices.SortStableFunc(drawn, func(a, b int) int { return cmp.Compare(totals[b], totals[a]) })
		c.Hidden = len(drawn) - maxChartLines
		drawn = drawn[:maxChartLines]
		slices.Sort(drawn)
	}

	c.Empty = peak == 0
	yMax := niceCeil(peak)
	colors := make(map[int]string, len(drawn))
	for k, i := range drawn {
		b := &v.backends[i]
		colors[i] = palette[k]
		c.Lines = append(c.Lines, chartLine{ID: b.id, Color: palette[k], Points: points(b.rps, yMax)})
	}
	for _, f := range []float64{0, 0.5, 1} {
		c.YTicks = append(c.YTicks, tick{Pos: yPos(f*yMax, yMax), Label: strconv.FormatFloat(f*yMax, 'f', -1, 64)})
	}
	for m := 5; m >= 0; m-- { // a tick a minute; the series' i-th second is rpsWindow-i seconds old
		label := "−" + strconv.Itoa(m) + "m"
		if m == 0 {
			label = "now"
		}
		i := min(max(rpsWindow-m*60, 0), rpsWindow-1)
		c.XTicks = append(c.XTicks, tick{Pos: xPos(i, rpsWindow), Label: label})
	}
	return c, colors
}

// points returns the polyline points of series, scaled to yMax.
func points(series []int64, yMax float64) string {
	buf := make([]byte, 0, len(series)*12)
	for i, n := range series {
		if i > 0 {
			buf = append(buf, ' ')
		}
		buf = strconv.AppendFloat(buf, xPos(i, len(series)), 'f', 1, 64)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, yPos(float64(n), yMax), 'f', 1, 64)
	}
	return string(buf)
}

// xPos places the i-th of n seconds on the x axis, the last at the right.
func xPos(i, n int) float64 {
	if n < 2 {
		return plotRight
	}
	return plotLeft + float64(i)*(plotRight-plotLeft)/float64(n-1)
}

// yPos places v on the y axis, whose top is yMax.
func yPos(v, yMax float64) float64 {
	return plotBottom - v/yMax*(plotBottom-plotTop)
}

// niceCeil returns the least of 1, 2, 5, 10, 20, 50... that is at least n.
func niceCeil(n int64) float64 {
	if n <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(float64(n))))
	for _, m := range []float64{1, 2, 5, 10} {
		if float64(n) <= m*p {
			return m * p
		}
	}
	return 10 * p
}
