package metrics

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSeries(t *testing.T) {
	const t0 = 1_750_000_000 // a Unix second
	tests := []struct {
		name   string
		events []int64 // seconds of the events, in order
		first  int64   // of the window read
		want   []int64 // counts of the 5 seconds from first
	}{
		{"empty", nil, t0, []int64{0, 0, 0, 0, 0}},
		{"one second", []int64{t0, t0, t0}, t0, []int64{3, 0, 0, 0, 0}},
		{"several seconds", []int64{t0, t0 + 1, t0 + 1, t0 + 4}, t0, []int64{1, 2, 0, 0, 1}},
		{"a window later, the bucket starts over", []int64{t0, t0, t0 + 10, t0 + 10}, t0 + 8, []int64{0, 0, 2, 0, 0}},
		{"older than the window: not reported", []int64{t0, t0 + 10}, t0, []int64{0, 0, 0, 0, 0}},
		{"late event for a reused bucket: dropped", []int64{t0 + 10, t0}, t0 + 10, []int64{1, 0, 0, 0, 0}},
		{"quiet seconds in between", []int64{t0, t0 + 3}, t0 + 1, []int64{0, 0, 1, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeries(10)
			for _, sec := range tt.events {
				s.add(sec)
			}
			assert.Equal(t, tt.want, s.last(5, tt.first+4))
			var total int64
			for _, n := range tt.want {
				total += n
			}
			assert.Equal(t, total, s.sum(tt.first, tt.first+4))
		})
	}
}

func TestSeriesSumClampsToWindow(t *testing.T) {
	s := newSeries(3)
	for sec := int64(100); sec < 110; sec++ {
		s.add(sec)
	}
	assert.Equal(t, int64(3), s.sum(0, 109), "only the last 3 seconds are kept")
}
