package chaos

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// waitAllOne waits until every title has exactly one live process and
// returns their pids, in titles' order.
func waitAllOne(t *testing.T, titles []string, d time.Duration) []int {
	t.Helper()
	pids := make([]int, len(titles))
	testproc.WaitFor(t, d, func() bool {
		snap := snapshot(t)
		for i, title := range titles {
			if len(snap[title]) != 1 {
				return false
			}
			pids[i] = snap[title][0]
		}
		return true
	}, fmt.Sprintf("all %d programs running, one process each", len(titles)))
	return pids
}

// Crash storm: every program killed by one kill -9. All must come back, at
// once, and none twice.
func TestCrashStorm(t *testing.T) {
	heavy(t)
	n := envInt("USRSVC_CHAOS_STORM_N", 200)
	w := newWorld(t, false)
	_, titles := w.sleepers(n, "success_seconds = 0.5")
	w.write()
	w.startDaemon()
	w.waitStarted(n, 120*time.Second) // started and recorded: past their success window
	old := waitAllOne(t, titles, 10*time.Second)

	args := []string{"-9"}
	for _, pid := range old {
		args = append(args, strconv.Itoa(pid))
	}
	t0 := time.Now()
	out, err := exec.Command("/bin/kill", args...).CombinedOutput()
	require.NoError(t, err, "%s", out)

	back := make([]time.Duration, n)
	maxSeen := make([]int, n)
	deadline := t0.Add(120 * time.Second)
	left := n
	for left > 0 && time.Now().Before(deadline) {
		snap := snapshot(t)
		now := time.Since(t0)
		for i, title := range titles {
			live := snap[title]
			maxSeen[i] = max(maxSeen[i], len(live))
			if back[i] == 0 && len(live) == 1 && live[0] != old[i] {
				back[i] = now
				left--
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Zero(t, left, "programs not back within 120 s")
	// A late duplicate would show within a success window: look again.
	time.Sleep(1500 * time.Millisecond)
	final := waitAllOne(t, titles, 10*time.Second)
	dups := 0
	for i := range titles {
		if maxSeen[i] > 1 {
			dups++
		}
		assert.NotContains(t, old, final[i], "%s: a killed pid came back", titles[i])
	}
	assert.Zero(t, dups, "programs seen with two processes")
	sorted := slices.Clone(back)
	slices.Sort(sorted)
	restarts := strings.Count(w.log(), "event=restarting")
	assert.Equal(t, n, restarts, "one restart per program, no more")
	figure(t, "crash storm: %d programs killed by one kill -9 → all %d back in %v (median %v, first %v), %d duplicates, %d restarts logged",
		n, n, sorted[n-1].Round(time.Millisecond), sorted[n/2].Round(time.Millisecond), sorted[0].Round(time.Millisecond), dups, restarts)
}

// Restart cycles: programs restarted again and again, each life seconds
// after its start, by the daemon: by their monitor (rss_limit = 1 kB,
// always over), so that each cycle is a stop and a start of the daemon's
// (programs that crash that often are a crash loop, which the daemon backs
// off: TestCrashLoopBacksOff in package usrsvc). The daemon's memory, threads, fds and goroutines
// after the run equal those before it (both measured idle, the programs
// stopped by hand), within noise.
func TestRestartCyclesNoLeak(t *testing.T) {
	heavy(t)
	cycles := envInt("USRSVC_CHAOS_CYCLES", 1000)
	k := envInt("USRSVC_CHAOS_CYCLE_PROGRAMS", 10)
	life := envString("USRSVC_CHAOS_CYCLE_LIFE", "0.15")
	window := envString("USRSVC_CHAOS_CYCLE_WINDOW", "0.05")
	duration := envDuration("USRSVC_CHAOS_CYCLE_DURATION", 0) // bench: run this long instead of counting
	w := newWorld(t, false)
	for i := 0; i < k; i++ {
		w.program(fmt.Sprintf("c%02d", i), w.sleepCmd("600", i), "success_seconds = "+window,
			"[[Monitor]]", "rss_limit = 1", "monitor_after = "+life, "monitor_interval = "+life)
	}
	w.write()
	dpid := w.startDaemon()
	started := func() int { return strings.Count(w.log(), "event=started") }
	idle := func() daemonFigures {
		code, out, errOut := w.usrsvc("-q", "-P", "stop", "all")
		require.Equal(t, 0, code, out+errOut)
		time.Sleep(time.Second) // let the daemon see the stops and settle
		return w.figures(dpid)
	}

	// Warm up: 10 cycles per program, so caches and pools are in place.
	testproc.WaitFor(t, 120*time.Second, func() bool { return started() >= 10*k }, "warm-up cycles")
	before := idle()
	code, out, errOut := w.usrsvc("-q", "-P", "start", "all")
	require.Equal(t, 0, code, out+errOut)

	t0 := time.Now()
	cpu0 := cpuTime(t, dpid)
	from := started()
	if duration > 0 {
		time.Sleep(duration)
	} else {
		testproc.WaitFor(t, 15*time.Minute, func() bool { return started()-from >= cycles }, fmt.Sprintf("%d restart cycles", cycles))
	}
	elapsed := time.Since(t0)
	done := started() - from
	cpu := cpuTime(t, dpid) - cpu0
	after := idle()
	assert.True(t, testproc.Alive(dpid), "usrsvcd survived")
	failed := strings.Count(w.log(), "event=backoff")

	figure(t, "restart cycles: %d starts of %d programs (restarted by their monitor %s s after each start: a stop and a start; success_seconds %s) in %v, usrsvcd and its launchers used %v of CPU (%v per start); before: %v; after: %v; %d backoffs",
		done, k, life, window, elapsed.Round(time.Second), cpu, (cpu / time.Duration(max(done, 1))).Round(10*time.Microsecond), before, after, failed)
	assert.LessOrEqual(t, after.FDs, before.FDs, "fds leaked")
	assert.LessOrEqual(t, after.Goroutines, before.Goroutines+2, "goroutines leaked")
	// Go keeps a thread for each system call that blocked at the same
	// moment as others, and never ends it: their number is the peak of
	// concurrent blocking calls (bounded by the programs starting and
	// stopping at once, higher on a loaded machine), not a count of
	// restarts. A leak would grow past it.
	assert.LessOrEqual(t, after.Threads, before.Threads+k+4, "threads leaked")
	assert.LessOrEqual(t, after.AnonKB, before.AnonKB+8*1024, "memory grew by more than 8 MB")
	// The live heap is what a leak grows; it is measured after a collection.
	assert.LessOrEqual(t, after.HeapKB, before.HeapKB+256, "live heap grew by more than 256 kB")
}

// Backoff and maxrestarts, as documented: a program that fails every start
// is retried after 1 s, 2 s, 4 s (doubling from max(restart_delay, 1 s)),
// and given up after maxrestarts automatic restarts, once.
func TestBackoffAndMaxrestarts(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	w.program("crash", w.sleepCmd("0.05", 0), "success_seconds = 1", "maxrestarts = 3")
	w.write()
	w.startDaemon()
	testproc.WaitFor(t, 60*time.Second, func() bool { return strings.Contains(w.log(), "event=gave-up") }, "gave up")
	time.Sleep(3 * time.Second) // nothing may follow
	log := w.log()
	assert.Equal(t, 1, strings.Count(log, "event=gave-up"), log)
	assert.Equal(t, 3, strings.Count(log, "event=restarting"), log)

	// The start attempts: the autostart, then one after each backoff; the
	// last one announces no next try, it gives up.
	re := regexp.MustCompile(`time=(\S+) level=\w+ msg="crash: start failed \(.*\); (?:next try in (\S+)|maxrestarts \(3\) reached)"`)
	var times []time.Time
	var delays []string
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		tm, err := time.Parse(time.RFC3339Nano, m[1])
		require.NoError(t, err)
		times = append(times, tm)
		delays = append(delays, m[2])
	}
	require.Len(t, times, 4, log)
	assert.Empty(t, delays[3], "no next try announced before giving up")
	for i, d := range delays[:3] {
		// Doubling from 1 s, plus up to 20 % of jitter (restarts of many
		// programs that failed together spread out).
		got, err := time.ParseDuration(d)
		require.NoError(t, err)
		base := time.Duration(1<<i) * time.Second
		assert.GreaterOrEqual(t, got, base, "backoff %d", i+1)
		assert.LessOrEqual(t, got, base+base/5+time.Millisecond, "backoff %d", i+1)
	}
	var gaps []time.Duration
	for i := 1; i < len(times); i++ {
		gap := times[i].Sub(times[i-1])
		gaps = append(gaps, gap.Round(10*time.Millisecond))
		want := time.Duration(1<<(i-1)) * time.Second
		// Each failed start takes its success window (at most 1 s) on top.
		assert.GreaterOrEqual(t, gap, want, "gap %d", i)
		assert.Less(t, gap, want+want/5+4*time.Second, "gap %d", i)
	}
	code, out, _ := w.usrsvc("--json", "status", "crash")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `"state":"gave-up"`)
	figure(t, "backoff: failed starts %v apart (backoff %v: 1 s, 2 s, 4 s plus up to 20 %% jitter, plus the start itself); gave up once after 3 restarts", gaps, delays[:3])
}
