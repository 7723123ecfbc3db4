package main

import (
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
