package scenarios_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/affinitylb/affinity/backend"
)

// drainBound is how soon the set must show a terminating pod as draining
// once the API server has stored it (issue 20).
const drainBound = time.Second

// TestTerminatingPodDrains: of three ready pods with 30 clients bound, pod
// web-1 becomes terminating (serving). The set shows it draining within a
// second; its clients stay on it and 30 new clients avoid it. Once the
// slice drops it, each of its clients is bound anew once, to another pod,
// and stays there; nobody else moves.
func TestTerminatingPodDrains(t *testing.T) {
	w := newCluster(t)
	for _, p := range []string{"web-0", "web-1", "web-2"} {
		w.startPod(p, host(p))
	}
	w.start(ready("web-0", host("web-0")), ready("web-1", host("web-1")), ready("web-2", host("web-2")))

	old := w.newClients(30)
	for _, c := range old {
		c.get()
	}
	require.Equal(t, tally{sent: 30, bindings: 30}, tallyOf(old))
	firstBound := bindingCounts(old)
	groups := byBackend(old)
	leaving := groups["web-1"]
	require.NotEmpty(t, leaving, "no client bound to web-1: %v", firstBound)
	staying := slices.Concat(groups["web-0"], groups["web-2"])
	require.Len(t, staying, len(old)-len(leaving))

	// web-1 terminating: draining within drainBound of being stored.
	asked := time.Now()
	w.write(ready("web-0", host("web-0")), terminating("web-1", host("web-1")), ready("web-2", host("web-2")))
	stored := time.Now()
	require.Eventually(t, func() bool { return w.states()["web-1"] == backend.Draining }, drainBound, time.Millisecond,
		"web-1 not draining within %v of the slice saying it terminates", drainBound)
	seen := time.Now()
	assert.Equal(t, map[string]backend.State{"web-0": backend.Healthy, "web-1": backend.Draining, "web-2": backend.Healthy}, w.states())

	before := snapshots(old)
	for _, c := range old {
		c.gets(5)
	}
	assert.Equal(t, before, snapshots(old), "while web-1 drains, every client stays where it was, web-1's on web-1")
	newcomers := w.newClients(30)
	for _, c := range newcomers {
		c.gets(3)
	}
	assert.Empty(t, byBackend(newcomers)["web-1"], "new clients placed on a draining pod")
	assert.Equal(t, tally{sent: 90, bindings: 30}, tallyOf(newcomers))

	// The slice drops web-1, which then stops.
	dropped := time.Now()
	w.write(ready("web-0", host("web-0")), ready("web-2", host("web-2")))
	removedAfter := w.waitStates(map[string]backend.State{"web-0": backend.Healthy, "web-2": backend.Healthy}, dropped)
	w.stopPod("web-1")

	before = snapshots(staying)
	beforeNew := snapshots(newcomers)
	for _, c := range slices.Concat(old, newcomers) {
		c.gets(5)
	}
	assert.Equal(t, before, snapshots(staying), "clients of web-0 and web-2 moved")
	assert.Equal(t, beforeNew, snapshots(newcomers), "new clients moved")
	for _, c := range leaving {
		assert.Equal(t, 2, c.bindings, "a client of web-1 is bound anew exactly once")
		assert.Contains(t, []string{"web-0", "web-2"}, c.bound)
		assert.Zero(t, c.strays)
	}
	all := tallyOf(slices.Concat(old, newcomers))
	assert.Zero(t, all.fails)

	t.Logf("figures: terminating to draining %v after the update was stored (%v after it was sent; bound %v)",
		seen.Sub(stored).Round(time.Microsecond), seen.Sub(asked).Round(time.Microsecond), drainBound)
	t.Logf("figures: clients bound %v at first; new clients bound %v", firstBound, bindingCounts(newcomers))
	t.Logf("figures: dropped to removed %v (the source holds a dropped pod draining for its RemoveDelay)", removedAfter.Round(time.Millisecond))
	t.Logf("figures: %d clients of web-1 bound anew once each, %d others moved; %d requests, %d failed, %d strays",
		len(leaving), countMoved(staying, 1)+countMoved(newcomers, 1), all.sent, all.fails, all.strays)
}

// TestPodReplacedAtSameAddress: pod web-1 is replaced by a new pod, web-3,
// at the same address. web-1's clients are bound anew (their cookie names
// a backend that left), not handed to web-3 without a new binding; the
// other pods' clients do not move.
func TestPodReplacedAtSameAddress(t *testing.T) {
	w := newCluster(t)
	for _, p := range []string{"web-0", "web-1", "web-2"} {
		w.startPod(p, host(p))
	}
	w.start(ready("web-0", host("web-0")), ready("web-1", host("web-1")), ready("web-2", host("web-2")))
	oldURL := w.set.Snapshot().Lookup("web-1").URL().String()

	cs := w.newClients(30)
	for _, c := range cs {
		c.get()
	}
	require.Equal(t, tally{sent: 30, bindings: 30}, tallyOf(cs))
	groups := byBackend(cs)
	replaced := groups["web-1"]
	require.NotEmpty(t, replaced, "no client bound to web-1: %v", bindingCounts(cs))
	others := slices.Concat(groups["web-0"], groups["web-2"])

	// web-1 is gone and web-3 answers at its address, in one slice update.
	w.stopPod("web-1")
	w.startPod("web-3", host("web-1"))
	begin := time.Now()
	w.write(ready("web-0", host("web-0")), ready("web-3", host("web-1")), ready("web-2", host("web-2")))
	// From the moment web-3 is a member, web-1's clients send requests
	// for longer than the source holds a departed pod (its RemoveDelay):
	// none may reach web-3 under web-1's binding.
	require.Eventually(t, func() bool { return w.set.Snapshot().Lookup("web-3") != nil }, waitTimeout, pollEvery)
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		for _, c := range replaced {
			c.get()
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := w.waitStates(map[string]backend.State{"web-0": backend.Healthy, "web-2": backend.Healthy, "web-3": backend.Healthy}, begin)
	require.Equal(t, oldURL, w.set.Snapshot().Lookup("web-3").URL().String(), "web-3 has web-1's address")

	before := snapshots(others)
	for _, c := range cs {
		c.gets(5)
	}
	assert.Equal(t, before, snapshots(others), "clients of web-0 and web-2 moved")
	onNew := 0
	for _, c := range replaced {
		assert.Equal(t, 2, c.bindings, "a client of web-1 is bound anew exactly once")
		assert.Zero(t, c.strays, "a client of web-1 served without a new binding")
		if c.bound == "web-3" {
			onNew++
		}
	}
	all := tallyOf(cs)
	assert.Zero(t, all.fails)

	t.Logf("figures: replacement applied %v after the update", took.Round(time.Millisecond))
	t.Logf("figures: %d clients of web-1 bound anew once each (%d of them to web-3, with a new cookie), %d others moved; %d requests, %d failed, %d strays",
		len(replaced), onNew, countMoved(others, 1), all.sent, all.fails, all.strays)
}

// TestScaleUnderLoad: 30 clients send GETs the whole time while the
// Service scales from 3 pods to 5 and then to 2, the leaving pods going
// terminating (serving) first, then dropped. No client of a pod that stays
// moves, each client of a leaving pod is bound anew once, to a pod that
// stays, and no GET is answered 5xx.
func TestScaleUnderLoad(t *testing.T) {
	w := newCluster(t)
	for _, p := range []string{"web-0", "web-1", "web-2", "web-3", "web-4"} {
		w.startPod(p, host(p))
	}
	eps := func(readyPods, terminatingPods []string) []discoveryv1.Endpoint {
		var out []discoveryv1.Endpoint
		for _, p := range readyPods {
			out = append(out, ready(p, host(p)))
		}
		for _, p := range terminatingPods {
			out = append(out, terminating(p, host(p)))
		}
		return out
	}
	w.start(eps([]string{"web-0", "web-1", "web-2"}, nil)...)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(5 * time.Minute)
	load := func(cs []*client) {
		for _, c := range cs {
			wg.Go(func() {
				for i := 0; i < maxLoadReqs && time.Now().Before(deadline); i++ {
					c.get()
					select {
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			})
		}
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)

	wave1 := w.newClients(15)
	load(wave1)
	w.waitProgress(wave1, 1)
	begin := time.Now()
	w.write(eps([]string{"web-0", "web-1", "web-2", "web-3", "web-4"}, nil)...)
	upTook := w.waitStates(statesOf(eps([]string{"web-0", "web-1", "web-2", "web-3", "web-4"}, nil)), begin)
	wave2 := w.newClients(15)
	load(wave2)
	all := slices.Concat(wave1, wave2)
	w.waitProgress(all, 20)

	begin = time.Now()
	w.write(eps([]string{"web-0", "web-1"}, []string{"web-2", "web-3", "web-4"})...)
	drainTook := w.waitStates(statesOf(eps([]string{"web-0", "web-1"}, []string{"web-2", "web-3", "web-4"})), begin)
	w.waitProgress(all, 20)
	begin = time.Now()
	w.write(eps([]string{"web-0", "web-1"}, nil)...)
	downTook := w.waitStates(statesOf(eps([]string{"web-0", "web-1"}, nil)), begin)
	for _, p := range []string{"web-2", "web-3", "web-4"} {
		w.stopPod(p)
	}
	w.waitProgress(all, 20)
	stopLoad()

	stays := map[string]bool{"web-0": true, "web-1": true}
	firsts := map[string]int{}
	var kept, left []*client
	for _, c := range all {
		firsts[c.first]++
		if stays[c.first] {
			kept = append(kept, c)
			assert.Equal(t, 1, c.bindings, "a client of %s, which stays, was bound anew", c.first)
		} else {
			left = append(left, c)
			assert.Equal(t, 2, c.bindings, "a client of %s, which left, is bound anew exactly once", c.first)
			assert.True(t, stays[c.bound], "a client of %s bound anew to %s, which leaves", c.first, c.bound)
		}
		assert.Zero(t, c.strays, "a client of %s served by another pod without a new binding", c.first)
		assert.Zero(t, c.fails, "a client of %s: %s", c.first, c.lastErr)
	}
	sum := tallyOf(all)
	assert.Zero(t, sum.server5, "GETs answered 5xx")
	require.NotEmpty(t, kept, "no client on a pod that stays: %v", firsts)
	require.NotEmpty(t, left, "no client on a pod that leaves: %v", firsts)

	t.Logf("figures: first bindings %v; 3 to 5 applied in %v, terminating seen in %v, 5 to 2 applied in %v",
		firsts, upTook.Round(time.Millisecond), drainTook.Round(time.Millisecond), downTook.Round(time.Millisecond))
	t.Logf("figures: %d requests by %d clients; %d failed, %d answered 5xx; %d clients of staying pods moved; %d clients of leaving pods bound anew once, %d strays",
		sum.sent, len(all), sum.fails, sum.server5, countMoved(kept, 1), countMoved(left, 1), sum.strays)
}

// TestAPIServerOutage: the API server is stopped for 10 s while 30 bound
// clients keep sending requests: they are all served, by the pods they
// are bound to, and the set keeps its membership. After the restart, a
// new pod and a pod going terminating are applied: the terminating pod's
// clients stay on it and new clients avoid it, some reaching the new pod.
func TestAPIServerOutage(t *testing.T) {
	const outage = 10 * time.Second
	w := newCluster(t)
	for _, p := range []string{"web-0", "web-1", "web-2", "web-3"} {
		w.startPod(p, host(p))
	}
	w.start(ready("web-0", host("web-0")), ready("web-1", host("web-1")), ready("web-2", host("web-2")))
	cs := w.newClients(30)
	for _, c := range cs {
		c.get()
	}
	require.Equal(t, tally{sent: 30, bindings: 30}, tallyOf(cs))
	bound := snapshots(cs)
	members := w.states()
	warnsBefore := w.warns.Load()

	stopBegin := time.Now()
	w.api.Stop()
	stopped := time.Now()
	rounds, changed := 0, 0
	for ; time.Since(stopped) < outage && rounds < 1000; rounds++ {
		for _, c := range cs {
			c.get()
		}
		if !assert.ObjectsAreEqual(members, w.states()) {
			changed++
		}
		time.Sleep(100 * time.Millisecond)
	}
	during := tallyOf(cs)
	warnsDuring := w.warns.Load() - warnsBefore
	trafficEnd := time.Now()
	w.api.Restart()
	restarted := time.Now()
	assert.Zero(t, changed, "rounds in which the set's membership differed during the outage")
	assert.Equal(t, bound, snapshots(cs), "clients moved during the outage")
	assert.Zero(t, during.fails, "requests failed during the outage")

	// After the restart: web-3 added, web-1 terminating.
	w.write(ready("web-0", host("web-0")), terminating("web-1", host("web-1")), ready("web-2", host("web-2")), ready("web-3", host("web-3")))
	written := time.Now()
	applied := w.waitStates(map[string]backend.State{
		"web-0": backend.Healthy, "web-1": backend.Draining, "web-2": backend.Healthy, "web-3": backend.Healthy,
	}, written)
	for _, c := range cs {
		c.gets(5)
	}
	assert.Equal(t, bound, snapshots(cs), "clients moved after the restart; web-1's stay on it while it drains")
	newcomers := w.newClients(30)
	for _, c := range newcomers {
		c.gets(3)
	}
	newGroups := byBackend(newcomers)
	assert.Empty(t, newGroups["web-1"], "new clients placed on a draining pod")
	assert.NotEmpty(t, newGroups["web-3"], "no new client placed on the pod added after the restart: %v", bindingCounts(newcomers))
	sum := tallyOf(slices.Concat(cs, newcomers))
	assert.Zero(t, sum.fails)

	t.Logf("figures: Stop took %v, Restart %v; API server down %v; traffic while down: %v, %d rounds, %d requests, %d failed, %d strays, %d clients moved, %d rounds with another membership; %d records at Warn or above",
		stopped.Sub(stopBegin).Round(time.Millisecond), restarted.Sub(trafficEnd).Round(time.Millisecond),
		restarted.Sub(stopped).Round(time.Millisecond), trafficEnd.Sub(stopped).Round(time.Millisecond), rounds,
		during.sent-30, during.fails, during.strays, countMoved(cs, 1), changed, warnsDuring)
	t.Logf("figures: changes written %v after the restart, applied %v after that; new clients bound %v; %d requests in all, %d failed",
		written.Sub(restarted).Round(time.Millisecond), applied.Round(time.Millisecond), bindingCounts(newcomers), sum.sent, sum.fails)
}

// waitProgress waits, up to waitTimeout, until every client of cs has
// made n more requests than when it was called.
func (w *world) waitProgress(cs []*client, n int64) {
	w.t.Helper()
	from := make([]int64, len(cs))
	for i, c := range cs {
		from[i] = c.progress.Load()
	}
	require.Eventually(w.t, func() bool {
		for i, c := range cs {
			if c.progress.Load() < from[i]+n {
				return false
			}
		}
		return true
	}, waitTimeout, pollEvery, "clients making %d requests each", n)
}

// bindingCounts returns how many of cs are bound to each backend.
func bindingCounts(cs []*client) map[string]int {
	m := map[string]int{}
	for _, c := range cs {
		m[c.bound]++
	}
	return m
}

// countMoved returns how many of cs have been bound more than bindings
// times.
func countMoved(cs []*client, bindings int) int {
	n := 0
	for _, c := range cs {
		if c.bindings > bindings {
			n++
		}
	}
	return n
}
