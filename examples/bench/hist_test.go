package main

import (
	"math/rand/v2"
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
