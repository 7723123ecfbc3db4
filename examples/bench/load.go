package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// drainGrace is how long, after the measured window, the built-in
// generator waits for the requests then in flight.
const drainGrace = 5 * time.Second

// generate is the built-in load generator: rc.conns goroutines, each with a
// client of its own holding one keep-alive connection, send GET requests to
// rc.url back to back for rc.warmup and then rc.duration. It prints
// "measuring" when the measured window opens and, when it is over, a
// "result" line with what was answered in the window. The requests carry
// rc.cookies in turn, each goroutine starting at another.
//
// Each goroutine reuses its requests and records latencies in a histogram
// of its own, allocated beforehand, so that measuring costs next to
// nothing beside net/http's own work.
func generate(ctx context.Context, rc roleConfig, stdout io.Writer) error {
	start := time.Now().Add(rc.warmup)
	end := start.Add(rc.duration)
	ctx, cancel := context.WithDeadline(ctx, end.Add(drainGrace))
	defer cancel()

	var out sync.Mutex // stdout, written by the timer and at the end
	measuring := time.AfterFunc(rc.warmup, func() {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintln(stdout, "measuring")
	})
	defer measuring.Stop()

	type worker struct {
		hist           histogram
		requests, errs int64
	}
	workers := make([]worker, rc.conns)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		wg.Go(func() {
			w.requests, w.errs = connection(ctx, rc.url, rotate(rc.cookies, i), start, end, &w.hist)
		})
	}
	wg.Wait()

	var r result
	var all histogram
	for i := range workers {
		all.merge(&workers[i].hist)
		r.Requests += workers[i].requests
		r.Errors += workers[i].errs
	}
	r.Elapsed = rc.duration
	r.P50, r.P99, r.Max = all.percentile(50), all.percentile(99), all.max
	if err := context.Cause(ctx); err != nil && err != context.DeadlineExceeded {
		return err // the benchmark went away
	}
	out.Lock()
	defer out.Unlock()
	return printResult(stdout, r)
}

// rotate returns s rotated left by k: s[k%len(s)] first.
func rotate(s []string, k int) []string {
	if len(s) == 0 {
		return nil
	}
	k %= len(s)
	return append(s[k:len(s):len(s)], s[:k]...)
}

// connection sends requests to target on one keep-alive connection until
// end, each carrying the next of cookies as its Cookie header, if there are
// any, and counts those answered within [start, end): the ones answered
// 200, recording their latencies in h, and the others.
func connection(ctx context.Context, target string, cookies []string, start, end time.Time, h *histogram) (requests, errs int64) {
	tr := &http.Transport{
		Proxy:               nil, // loopback, whatever the environment says
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	// One request per cookie, built once and never changed: the transport
	// may still be reading one when its answer has come.
	reqs := make([]*http.Request, max(len(cookies), 1))
	for i := range reqs {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return 0, 1
		}
		if len(cookies) > 0 {
			req.Header.Set("Cookie", cookies[i])
		}
		reqs[i] = req
	}
	for n := 0; ctx.Err() == nil; n++ {
		req := reqs[n%len(reqs)]
		t0 := time.Now()
		if !t0.Before(end) {
			break
		}
		resp, err := client.Do(req)
		ok := err == nil && resp.StatusCode == http.StatusOK
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		t1 := time.Now()
		switch {
		case t1.Before(start) || !t1.Before(end):
		case ok:
			requests++
			h.record(t1.Sub(t0))
		default:
			errs++
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond) // no busy loop on a dead proxy
		}
	}
	return requests, errs
}
