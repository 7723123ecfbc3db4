package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	require.Equal(t, numBuckets-1, bucketOf(1<<maxExp-1))
	for i := range numBuckets - 1 {
		require.Equal(t, i, bucketOf(bucketLow(i)), "bucket %d's low end", i)
		require.Equal(t, i, bucketOf(bucketLow(i+1)-1), "bucket %d's high end", i)
		require.Less(t, bucketLow(i), bucketLow(i+1))
	}
	assert.Equal(t, 0, bucketOf(-5), "negative values count as 0")
	assert.Equal(t, numBuckets-1, bucketOf(1<<62), "huge values count in the last bucket")
	for range 10000 {
		v := rand.Int64N(1 << maxExp)
		i := bucketOf(v)
		lo, hi := bucketLow(i), bucketLow(i+1)
		require.True(t, lo <= v && v < hi, "%d in bucket %d [%d, %d)", v, i, lo, hi)
		require.LessOrEqual(t, float64(hi-lo), float64(lo)/subCount+1, "bucket %d is too wide", i)
	}
}

func TestPercentile(t *testing.T) {
	var h histogram
	assert.Equal(t, time.Duration(0), h.percentile(99), "empty")

	// 1000 latencies, 1µs to 1000µs, recorded in random order.
	for _, i := range rand.Perm(1000) {
		h.record(time.Duration(i+1) * time.Microsecond)
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{0, time.Microsecond},
		{1, 10 * time.Microsecond},
		{50, 500 * time.Microsecond},
		{90, 900 * time.Microsecond},
		{99, 990 * time.Microsecond},
		{99.9, 999 * time.Microsecond},
		{100, 1000 * time.Microsecond},
	}
	for _, tt := range tests {
		got := h.percentile(tt.p)
		assert.InEpsilon(t, float64(tt.want), float64(got), 1.0/subCount, "p%v = %v, want %v", tt.p, got, tt.want)
	}
	assert.Equal(t, 1000*time.Microsecond, h.percentile(100), "the maximum is exact")
	assert.Equal(t, 1000*time.Microsecond, h.max)
}

func TestPercentileOfOneValueIsThatValue(t *testing.T) {
	var h histogram
	h.record(4100 * time.Microsecond)
	for _, p := range []float64{0, 50, 99, 100} {
		assert.InEpsilon(t, float64(4100*time.Microsecond), float64(h.percentile(p)), 1.0/subCount)
	}
}

func TestMerge(t *testing.T) {
	var a, b, all histogram
	for i := range 200 {
		d := time.Duration(i*i) * time.Microsecond
		all.record(d)
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	assert.Equal(t, all, a)
}

func TestRecordDoesNotAllocate(t *testing.T) {
	var h histogram
	allocs := testing.AllocsPerRun(1000, func() { h.record(123 * time.Microsecond) })
	assert.Zero(t, allocs)
}

func TestMedian(t *testing.T) {
	tests := []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.xs...)
		assert.Equal(t, tt.want, median(tt.xs), "%v", tt.xs)
		assert.Equal(t, in, tt.xs, "median sorted its argument")
	}
}

func TestMedianInterval(t *testing.T) {
	seq := func(n int) []float64 { // n, n-1, … 1: not sorted
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(n - i)
		}
		return xs
	}
	tests := []struct {
		name   string
		xs     []float64
		conf   float64
		ok     bool
		lo, hi float64
		cover  float64
	}{
		{"none", nil, 0.95, false, 0, 0, 0},
		{"one", seq(1), 0.95, false, 0, 0, 0},
		{"5: min–max reaches only 93.75%", seq(5), 0.95, false, 0, 0, 0},
		{"5 at 90%", seq(5), 0.90, true, 1, 5, 1 - 2.0/32},
		{"6: min–max, 1 - 2/64", seq(6), 0.95, true, 1, 6, 1 - 2.0/64},
		{"9: 2nd and 8th, 1 - 2·10/512", seq(9), 0.95, true, 2, 8, 1 - 20.0/512},
		{"30: 10th and 21st", seq(30), 0.95, true, 10, 21, 0.957226},
		{"50: 18th and 33rd", seq(50), 0.95, true, 18, 33, 0.967161},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.xs)
			lo, hi, cover, ok := medianInterval(tt.xs, tt.conf)
			require.Equal(t, tt.ok, ok)
			assert.Equal(t, in, tt.xs, "xs unchanged")
			if !ok {
				return
			}
			assert.Equal(t, tt.lo, lo)
			assert.Equal(t, tt.hi, hi)
			assert.InDelta(t, tt.cover, cover, 1e-6)
			assert.GreaterOrEqual(t, cover, tt.conf)
		})
	}
}
