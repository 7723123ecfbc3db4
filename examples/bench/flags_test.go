package main

import (
	"bytes"
	"errors"
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFlags(t *testing.T) {
	defaults := config{
		levels: []int{64}, duration: 5 * time.Second, warmup: time.Second, rounds: 5,
		scenarios: []string{"bound", "new"}, gen: "auto", pin: true,
	}
	with := func(f func(*config)) config {
		c := defaults
		f(&c)
		return c
	}
	tests := []struct {
		name string
		args []string
		want config
	}{
		{"defaults", nil, defaults},
		{"one concurrency", []string{"-c", "8"}, with(func(c *config) { c.levels = []int{8} })},
		{"a list of concurrencies takes three rounds", []string{"-concurrency", "1, 16,64,256"},
			with(func(c *config) { c.levels, c.rounds = []int{1, 16, 64, 256}, 3 })},
		{"unless -rounds says otherwise", []string{"-concurrency", "1,16", "-rounds", "7"},
			with(func(c *config) { c.levels, c.rounds = []int{1, 16}, 7 })},
		{"a list of one keeps five rounds", []string{"-concurrency", "32"}, with(func(c *config) { c.levels = []int{32} })},
		{"scenarios run in a fixed order, once each", []string{"-scenarios", "new,bound,new"}, defaults},
		{"one scenario", []string{"-scenarios", "new"}, with(func(c *config) { c.scenarios = []string{"new"} })},
		{"smoke", []string{"-d", "300ms", "-warmup", "0", "-rounds", "1", "-c", "4", "-gen", "go", "-pin=false", "-json"},
			with(func(c *config) {
				c.duration, c.warmup, c.rounds, c.levels, c.gen, c.pin, c.json = 300*time.Millisecond, 0, 1, []int{4}, "go", false, true
			})},
		{"wrk with whole seconds", []string{"-gen", "wrk", "-d", "2s"}, with(func(c *config) { c.gen, c.duration = "wrk", 2*time.Second })},
		{"profiles", []string{"-cpuprofile", "prof"}, with(func(c *config) { c.cpuprofile = "prof" })},
		{"paired", []string{"-paired"}, with(func(c *config) { c.paired = true })},
		{"control", []string{"-control"}, with(func(c *config) { c.control = true })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, nil)
			require.NoError(t, err)
			tt.want.args = tt.args
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseFlagsRejects(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-c", "0"}, `invalid value 0 for -c`},
		{[]string{"-c", "5000"}, `invalid value 5000 for -c`},
		{[]string{"-c", "8", "-concurrency", "1,2"}, "not both"},
		{[]string{"-concurrency", "1,x"}, `"x" is not a connection count`},
		{[]string{"-concurrency", "1,0"}, `"0" is not a connection count`},
		{[]string{"-concurrency", "4,4"}, "4 given twice"},
		{[]string{"-concurrency", "1,2,3,4,5,6,7,8,9"}, "at most 8"},
		{[]string{"-d", "10ms"}, "invalid value 10ms for -d"},
		{[]string{"-d", "1h"}, "invalid value 1h0m0s for -d"},
		{[]string{"-warmup", "-1s"}, "invalid value -1s for -warmup"},
		{[]string{"-rounds", "0"}, "invalid value 0 for -rounds"},
		{[]string{"-rounds", "51"}, "invalid value 51 for -rounds"},
		{[]string{"-scenarios", "bound,sticky"}, `unknown scenario "sticky"`},
		{[]string{"-gen", "ab"}, `invalid value "ab" for -gen`},
		{[]string{"-gen", "wrk", "-d", "1500ms"}, "whole seconds"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-nope"}, "-nope"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := parseFlags(tt.args, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestHelpWritesUsage(t *testing.T) {
	var out bytes.Buffer
	_, err := parseFlags([]string{"-h"}, &out)
	assert.True(t, errors.Is(err, flag.ErrHelp))
	assert.Contains(t, out.String(), "Usage: go run ./examples/bench")
	assert.Contains(t, out.String(), "-concurrency")
	assert.NotContains(t, out.String(), "-role", "the helpers' flags are not the user's")
}

func TestEstimate(t *testing.T) {
	cfg, err := parseFlags(nil, nil)
	require.NoError(t, err)
	assert.Equal(t, 20, cfg.runs())
	assert.Less(t, cfg.estimate(), 2*time.Minute+10*time.Second, "the default run stays around two minutes")

	paired, err := parseFlags([]string{"-paired"}, nil)
	require.NoError(t, err)
	assert.Equal(t, 20, paired.runs())
	assert.Equal(t, cfg.estimate()/2, paired.estimate(), "paired runs go two at a time")
}

func TestParseRole(t *testing.T) {
	rc, err := parseRole([]string{"-role", "proxy", "-mode", "sticky", "-backends", "http://127.0.0.1:1,http://127.0.0.1:2", "-key", "00ff"})
	require.NoError(t, err)
	assert.Equal(t, []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, rc.backends)
	assert.Equal(t, []byte{0, 0xff}, rc.key)

	rc, err = parseRole([]string{"-role", "load", "-url", "http://127.0.0.1:1/", "-cookie", "affinity=a", "-cookie", "affinity=b"})
	require.NoError(t, err)
	assert.Equal(t, []string{"affinity=a", "affinity=b"}, rc.cookies, "every -cookie, in order")
	rc, err = parseRole([]string{"-role", "load", "-url", "http://127.0.0.1:1/"})
	require.NoError(t, err)
	assert.Empty(t, rc.cookies)

	for _, args := range [][]string{
		{"-role", "client"},
		{"-role", "proxy", "-mode", "fast"},
		{"-role", "proxy", "-mode", "sticky", "-key", "zz"},
		{"-role", "load", "-url", "http://example.com/"},
		{"-role", "load", "-url", "http://127.0.0.1:1/", "-c", "0"},
		{"-role", "backends", "-n", "0"},
	} {
		_, err := parseRole(args)
		assert.Error(t, err, "%q", args)
	}
	assert.True(t, isRole([]string{"-role", "load"}))
	assert.True(t, isRole([]string{"-role=load"}))
	assert.False(t, isRole([]string{"-c", "1"}))
	assert.False(t, isRole(nil))
}
