package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// violations collects broken invariants, each once.
type violations struct {
	mu   sync.Mutex
	seen map[string]bool
	list []string
}

func (v *violations) add(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]bool{}
	}
	if !v.seen[msg] {
		v.seen[msg] = true
		v.list = append(v.list, msg)
	}
}

// Racing operators: for a while, several concurrent usrsvc start, stop and
// restart on the same programs, usrsvcd supervising them, a reread every
// 100 ms, and kill -9 of programs and of usrsvcd itself (started again at
// once). Checked all along: never two processes of one program, a pidfile
// names its program's process or no live process, the canaries (a process
// whose title almost matches, and as root another user's process with the
// very title) are never signalled. At the end: no zombie, no lock held,
// no race report, and each program runs if and only if its last manual
// operation was not a stop.
func TestRacingOperators(t *testing.T) {
	heavy(t)
	duration := envDuration("USRSVC_CHAOS_RACE_DURATION", 10*time.Second)
	w := newWorld(t, true)
	names, titles := w.sleepers(3)
	w.write()
	dpid := atomic.Int64{}
	dpid.Store(int64(w.startDaemon()))
	w.waitStarted(len(names), 60*time.Second)

	// Canaries: never matched, never signalled.
	var canaries []*exec.Cmd
	near := []*exec.Cmd{
		{Path: "/bin/sleep", Args: []string{"/bin/sleep-canary", strings.Fields(titles[0])[1]}},
		{Path: "/bin/sleep", Args: []string{"/bin/sleep", strings.Fields(titles[0])[1] + "1"}},
	}
	canaries = append(canaries, near...)
	if os.Geteuid() == 0 {
		args := strings.Fields(titles[1])
		stranger := exec.Command(args[0], args[1:]...)
		stranger.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		canaries = append(canaries, stranger)
	}
	for _, c := range canaries {
		c.SysProcAttr = mergeSetsid(c.SysProcAttr)
		require.NoError(t, c.Start())
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	canaryDied := make(chan string, len(canaries))
	for _, c := range canaries {
		go func() {
			st, _ := c.Process.Wait()
			canaryDied <- fmt.Sprintf("canary %v died: %v", c.Args, st)
		}()
	}

	var bad violations
	var ops, opsFailed, rereads, programKills, daemonKills, checks atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	every := func(d time.Duration, f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				f()
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
		}()
	}

	// Operators.
	actions := []string{"start", "stop", "restart"}
	for i := 0; i < 3; i++ {
		every(0, func() {
			action, name := actions[rand.IntN(len(actions))], names[rand.IntN(len(names))]
			code, out, errOut := w.usrsvc(action, name)
			ops.Add(1)
			switch {
			case strings.Contains(errOut, "DATA RACE") || strings.Contains(errOut, "panic"):
				bad.add("usrsvc %s %s: %s", action, name, errOut)
			case code == 0:
			case code == 134 || code == 1:
				// The program was killed (by the test) during its success window.
				opsFailed.Add(1)
			default:
				bad.add("usrsvc %s %s: code %d: %s%s", action, name, code, out, errOut)
			}
		})
	}
	// Rereads.
	every(100*time.Millisecond, func() {
		if pid := int(dpid.Load()); pid > 0 && syscall.Kill(pid, syscall.SIGUSR1) == nil {
			rereads.Add(1)
		}
	})
	// The killer: programs (past their success window: a crash) and usrsvcd.
	every(400*time.Millisecond, func() {
		if rand.IntN(4) == 0 {
			pid := int(dpid.Load())
			dpid.Store(0)
			syscall.Kill(pid, syscall.SIGKILL)
			testproc.WaitFor(t, 10*time.Second, func() bool { return !testproc.Alive(pid) }, "usrsvcd killed")
			daemonKills.Add(1)
			code, out, errOut := w.usrsvcd("start")
			if code != 0 {
				bad.add("usrsvcd start after kill -9: code %d: %s%s", code, out, errOut)
				return
			}
			dpid.Store(int64(w.daemonPID()))
			return
		}
		s, err := proc.Default().Snapshot(os.Getuid())
		if err != nil {
			return
		}
		title := titles[rand.IntN(len(titles))]
		for _, p := range s.Procs {
			if p.Title == title && !p.Zombie() && time.Since(p.Started) > 500*time.Millisecond {
				if syscall.Kill(p.PID, syscall.SIGKILL) == nil {
					programKills.Add(1)
				}
			}
		}
	})
	// The invariants, all along.
	every(20*time.Millisecond, func() {
		checks.Add(1)
		snap := snapshot(t)
		for i, name := range names {
			if live := snap[titles[i]]; len(live) > 1 {
				bad.add("%s has %d processes: %v", name, len(live), live)
			}
			data, err := os.ReadFile(w.path("run/" + name + ".pid"))
			if err != nil {
				continue
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				bad.add("%s's pidfile holds %q", name, data)
				continue
			}
			// An empty title is a process on its way out (its memory is
			// gone, it is not a zombie yet): the program just killed.
			if p, err := proc.Default().Process(pid); err == nil && !p.Zombie() && p.Title != titles[i] && p.Title != "" {
				// Re-read: the pidfile may have just been replaced.
				if again, _ := os.ReadFile(w.path("run/" + name + ".pid")); string(again) == string(data) {
					bad.add("%s's pidfile names process %d %q", name, pid, p.Title)
				}
			}
		}
		select {
		case msg := <-canaryDied:
			bad.add("%s", msg)
		default:
		}
	})
	wg.Wait()

	// The end: a daemon runs, nothing is in flight. Each program converges
	// to its last manual operation.
	if pid := int(dpid.Load()); pid == 0 || !testproc.Alive(pid) {
		code, out, errOut := w.usrsvcd("start")
		require.Equal(t, 0, code, out+errOut)
	}
	last := func(name string) string {
		var rec struct{ Action string }
		data, err := os.ReadFile(filepath.Join(w.path("state"), "programs", name+".manual.json"))
		if err != nil {
			return "none"
		}
		require.NoError(t, json.Unmarshal(data, &rec))
		return rec.Action
	}
	testproc.WaitFor(t, 60*time.Second, func() bool {
		snap := snapshot(t)
		for i, name := range names {
			if want := last(name) != "stop"; want != (len(snap[titles[i]]) == 1) {
				return false
			}
		}
		return true
	}, "every program in the state of its last manual operation")
	stillOne := func() {
		snap := snapshot(t)
		for i, name := range names {
			want := 0
			if last(name) != "stop" {
				want = 1
			}
			assert.Len(t, snap[titles[i]], want, "%s (last manual operation: %s)", name, last(name))
		}
	}
	time.Sleep(2 * time.Second) // nothing changes after convergence
	stillOne()
	for _, name := range names {
		assert.True(t, lockFree(t, filepath.Join(w.path("state"), "locks", name+".lock")), "%s's lock is free", name)
	}
	// No zombie of ours: children of the daemon or of this test.
	time.Sleep(2 * time.Second) // init reaps orphans every ~1.5 s
	s, err := proc.Default().Snapshot(os.Getuid())
	require.NoError(t, err)
	for _, p := range s.Procs {
		if p.Zombie() && (p.PPID == int(dpid.Load()) || p.PPID == os.Getpid()) {
			bad.add("zombie %d, child of %d", p.PID, p.PPID)
		}
	}
	for _, c := range canaries {
		if !testproc.Alive(c.Process.Pid) {
			bad.add("canary %v is gone", c.Args)
		}
	}
	if log := w.log(); strings.Contains(log, "DATA RACE") || strings.Contains(log, "panic:") {
		bad.add("usrsvcd's log reports a race or a panic")
	}
	assert.Empty(t, bad.list)
	states := make([]string, len(names))
	for i, name := range names {
		states[i] = name + ":" + last(name)
	}
	figure(t, "racing operators for %v: %d usrsvc operations (%d failed as their program was killed), %d rereads, %d program kills, %d usrsvcd kills, %d invariant checks, %d canaries; %d violations; final %v",
		duration, ops.Load(), opsFailed.Load(), rereads.Load(), programKills.Load(), daemonKills.Load(), checks.Load(),
		len(canaries), len(bad.list), states)
}

// mergeSetsid puts a canary in a session of its own.
func mergeSetsid(a *syscall.SysProcAttr) *syscall.SysProcAttr {
	if a == nil {
		a = &syscall.SysProcAttr{}
	}
	a.Setsid = true
	return a
}
