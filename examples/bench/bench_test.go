package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRoundOrder(t *testing.T) {
	tests := []struct {
		round int
		want  [2]string
	}{
		{1, [2]string{modeBaseline, modeSticky}},
		{2, [2]string{modeSticky, modeBaseline}},
		{3, [2]string{modeBaseline, modeSticky}},
		{50, [2]string{modeSticky, modeBaseline}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, roundOrder(tt.round), "round %d", tt.round)
	}
}

func TestBackendNames(t *testing.T) {
	for _, tc := range []struct {
		body, name string
		index      int
	}{
		{"hello from app1" + strings.Repeat(" ", 112) + "\n", "app1", 0},
		{"hello from app3\n", "app3", 2},
		{"hello from app4 \n", "app4", -1}, // numBackends is 3
		{"hello from app0 \n", "app0", -1},
		{"hello from db1 \n", "db1", -1},
		{"hello from app \n", "app", -1},
		{"goodbye", "", -1},
		{"", "", -1},
		{"hello from app01\n", "app01", -1},
	} {
		assert.Equal(t, tc.name, answeredBy([]byte(tc.body)), "%q", tc.body)
		assert.Equal(t, tc.index, backendIndex(tc.name), "%q", tc.name)
	}
}

func TestRotate(t *testing.T) {
	s := []string{"a", "b", "c"}
	assert.Equal(t, []string{"a", "b", "c"}, rotate(s, 0))
	assert.Equal(t, []string{"b", "c", "a"}, rotate(s, 1))
	assert.Equal(t, []string{"c", "a", "b"}, rotate(s, 5))
	assert.Equal(t, []string{"a", "b", "c"}, s, "s itself is left as it was")
	assert.Nil(t, rotate(nil, 2))
}

func TestBackendNameRoundTrip(t *testing.T) {
	for i := range numBackends {
		assert.Equal(t, i, backendIndex(backendName(i)), backendName(i))
	}
	assert.Equal(t, "app1", backendName(0))
}
