package chaos

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// watchBack polls until every title has one live process other than
// old[i], recording when each came back and the most processes any title
// had at once (a duplicate start shows as 2).
func watchBack(t *testing.T, titles []string, old []int, t0 time.Time, d time.Duration) (back []time.Duration, most int) {
	t.Helper()
	back = make([]time.Duration, len(titles))
	left := len(titles)
	for deadline := t0.Add(d); left > 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		snap := snapshot(t)
		now := time.Since(t0)
		for i, title := range titles {
			live := snap[title]
			most = max(most, len(live))
			if back[i] == 0 && len(live) == 1 && live[0] != old[i] {
				back[i] = now
				left--
			}
		}
	}
	require.Zero(t, left, "programs not back within %v", d)
	return back, most
}

// stillOne checks for d that every title keeps exactly one process: no
// late duplicate.
func stillOne(t *testing.T, titles []string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		snap := snapshot(t)
		for _, title := range titles {
			require.Len(t, snap[title], 1, "%s: exactly one process", title)
		}
	}
}

func maxDuration(ds []time.Duration) time.Duration { return slices.Max(ds) }

// freshCrash makes the next exit of name a first crash, restarted at once:
// usrsvc start of the running program resets the daemon's crash series (a
// manual start resets the counts). It waits until the daemon applied it.
func (w *world) freshCrash(name string) {
	w.t.Helper()
	code, out, errOut := w.usrsvc("-q", "start", name)
	require.Equal(w.t, 0, code, out+errOut)
	var manual struct{ Time time.Time }
	data, err := os.ReadFile(w.path("state/programs/" + name + ".manual.json"))
	require.NoError(w.t, err)
	require.NoError(w.t, json.Unmarshal(data, &manual))
	testproc.WaitFor(w.t, 10*time.Second, func() bool {
		var rec struct {
			ManualSeen time.Time `json:"manual_seen"`
		}
		data, err := os.ReadFile(w.path("state/programs/" + name + ".daemon.json"))
		return err == nil && json.Unmarshal(data, &rec) == nil && !rec.ManualSeen.Before(manual.Time)
	}, "the daemon applied the manual start of "+name)
}

// A frozen daemon: usrsvcd SIGSTOPped while every program is killed. Nothing
// can happen while it is stopped; once it resumes, every dead program is
// restarted at once, and none twice.
func TestFrozenDaemon(t *testing.T) {
	t.Parallel()
	freeze := envDuration("USRSVC_CHAOS_FREEZE", 30*time.Second)
	w := newWorld(t, false)
	_, titles := w.sleepers(10)
	w.write()
	dpid := w.startDaemon()
	w.waitStarted(10, 60*time.Second)
	old := waitAllOne(t, titles, 10*time.Second)

	require.NoError(t, syscall.Kill(dpid, syscall.SIGSTOP))
	t.Cleanup(func() { syscall.Kill(dpid, syscall.SIGCONT) })
	for _, pid := range old {
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	}
	time.Sleep(freeze)
	snap := snapshot(t)
	for _, title := range titles {
		assert.Empty(t, snap[title], "nothing restarts while usrsvcd is stopped")
	}

	t0 := time.Now()
	require.NoError(t, syscall.Kill(dpid, syscall.SIGCONT))
	back, most := watchBack(t, titles, old, t0, 60*time.Second)
	stillOne(t, titles, 2*time.Second)
	assert.Equal(t, 1, most, "a program had two processes")
	assert.Equal(t, len(titles), strings.Count(w.log(), "event=restarting"), "one restart each")
	assert.Less(t, maxDuration(back), 15*time.Second, "restarted at once after SIGCONT")
	figure(t, "frozen daemon: SIGSTOP %v while %d programs were killed → after SIGCONT all back in %v, %d restarts, max %d process per program",
		freeze, len(titles), maxDuration(back).Round(time.Millisecond), strings.Count(w.log(), "event=restarting"), most)
}

// A starved daemon: both cores busy with CPU hogs. The latency from a
// kill -9 to the program's new process stays bounded; measured idle too.
func TestStarvedDaemon(t *testing.T) {
	heavy(t)
	kills := envInt("USRSVC_CHAOS_STARVED_KILLS", 5)
	w := newWorld(t, false)
	names, titles := w.sleepers(1)
	w.write()
	w.startDaemon()
	w.waitStarted(1, 60*time.Second)

	measure := func() []time.Duration {
		var lat []time.Duration
		for i := 0; i < kills; i++ {
			// Past the success window, so the kill is a crash, not a failed start.
			time.Sleep(700 * time.Millisecond)
			// Kills this close are a crash loop, which the daemon backs
			// off: a manual start (of the running program) ends the series,
			// so each kill measures a first crash's restart.
			w.freshCrash(names[0])
			old := waitAllOne(t, titles, 10*time.Second)
			t0 := time.Now()
			require.NoError(t, syscall.Kill(old[0], syscall.SIGKILL))
			back, _ := watchBack(t, titles, old, t0, 60*time.Second)
			lat = append(lat, back[0])
		}
		slices.Sort(lat)
		return lat
	}
	idle := measure()

	// The hogs: busy shell loops, one per core (two here), that end by themselves.
	token := "chaos-hog-" + w.run
	for i := 0; i < 2; i++ {
		hog := exec.Command("/usr/bin/timeout", "120", "/bin/sh", "-c", "while :; do :; done # "+token)
		require.NoError(t, hog.Start())
		t.Cleanup(func() { hog.Process.Kill(); hog.Wait() })
	}
	t.Cleanup(func() { testproc.KillToken(token) })
	time.Sleep(time.Second)
	hogged := measure()

	assert.Less(t, hogged[len(hogged)-1], 15*time.Second, "kill → new process under load")
	figure(t, "starved daemon: kill -9 → new process, %d kills each: idle median %v (max %v); both cores busy with CPU hogs median %v (max %v)",
		kills, idle[len(idle)/2].Round(time.Millisecond), idle[len(idle)-1].Round(time.Millisecond),
		hogged[len(hogged)/2].Round(time.Millisecond), hogged[len(hogged)-1].Round(time.Millisecond))
}
