package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/statedir"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// events records a Manager's events for tests.
type events struct {
	mu  sync.Mutex
	evs []Event
}

func (r *events) add(ev Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *events) list(kind EventKind, program string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, ev := range r.evs {
		if ev.Kind == kind && (program == "" || ev.Program == program) {
			out = append(out, ev)
		}
	}
	return out
}

func (r *events) wait(t testing.TB, kind EventKind, program string, n int) []Event {
	t.Helper()
	waitFor(t, 15*time.Second, func() bool { return len(r.list(kind, program)) >= n },
		"event "+string(kind)+" of "+program+" x"+strconv.Itoa(n))
	return r.list(kind, program)
}

// runLoop runs m.Run in the background until the test ends.
func runLoop(t testing.TB, m *Manager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10 s of its context ending")
			}
			// A start under way when Run returned is the launcher's to
			// finish (it records the program, then exits): let it, before
			// the test's programs are killed and its directory removed.
			waitLaunchersDone(t, m.Config().StateDir)
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitLaunchersDone waits (10 s at most) until no launcher of this process
// holds a file under dir (its program's lock, in the state directory), and
// no program lock under dir is held: a job still queued on a launcher's
// socket holds its lock there, before the launcher has it.
func waitLaunchersDone(t testing.TB, dir string) {
	locked := func() bool {
		locks, _ := filepath.Glob(filepath.Join(dir, "locks", "*.lock"))
		for _, l := range locks {
			f, err := os.Open(l)
			if err != nil {
				continue
			}
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			f.Close() // releases it
			if err != nil {
				return true
			}
		}
		return false
	}
	busy := func() bool {
		if locked() {
			return true
		}
		var kids []byte
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			more, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/children")
			kids = append(append(kids, ' '), more...)
		}
		for _, f := range strings.Fields(string(kids)) {
			cmdline, _ := os.ReadFile("/proc/" + f + "/cmdline")
			if !strings.HasPrefix(string(cmdline), "usrsvc-launcher\x00") {
				continue
			}
			fds, _ := os.ReadDir("/proc/" + f + "/fd")
			for _, fd := range fds {
				if target, err := os.Readlink("/proc/" + f + "/fd/" + fd.Name()); err == nil && strings.HasPrefix(target, dir+"/") {
					return true
				}
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); busy(); {
		if time.Now().After(deadline) {
			t.Errorf("a launcher still holds a file under %s 10 s after Run returned", dir)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// superviseWeb runs a loop over one sleeping program, "web", and waits
// until the loop started it.
func superviseWeb(t *testing.T) (e *testEnv, h *testproc.Helper, m *Manager, evs *events, started []Event) {
	e = newTestEnv(t)
	h = testproc.New(t, "sleep")
	e.addProgram("web", h.CommandLine())
	evs = &events{}
	m = e.manager(recorder(evs))
	runLoop(t, m)
	return e, h, m, evs, evs.wait(t, EventStarted, "web", 1)
}

// waitRecordedRunning waits until the loop records name running as pid.
func waitRecordedRunning(t *testing.T, m *Manager, name string, pid int, why string) {
	t.Helper()
	waitFor(t, 5*time.Second, func() bool {
		rec, _ := m.state().Record(name)
		return rec != nil && State(rec.State) == StateRunning && rec.PID == pid
	}, why)
}

func recorder(r *events) func(*Options) {
	return func(o *Options) { o.OnEvent = r.add }
}

func TestRunAdoptsWithoutRestart(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	e.addProgram("web", h.CommandLine())
	var evs events
	m := e.manager(recorder(&evs))
	st, err := m.Do(ctxT(t), ActionStart, "web")
	require.NoError(t, err)
	pid := st.Process.PID

	stop := runLoop(t, m)
	adopted := evs.wait(t, EventAdopted, "web", 1)
	assert.Equal(t, pid, adopted[0].PID)
	stop()
	assert.True(t, pidAlive(pid), "stopping the loop leaves programs running")
	assert.Equal(t, []int{pid}, h.PIDs())
	assert.Len(t, evs.list(EventStarted, "web"), 1, "only the manual start")
}

func TestRunRestartsKilledProgramAtOnce(t *testing.T) {
	t.Parallel()
	_, _, m, evs, started := superviseWeb(t)
	pid := started[0].PID

	killed := time.Now()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	exited := evs.wait(t, EventExited, "web", 1)
	t.Logf("exit noticed %v after SIGKILL", exited[0].Time.Sub(killed))
	assert.Equal(t, pid, exited[0].PID)
	require.NotNil(t, exited[0].Exit)
	if exited[0].Exit.Known {
		assert.Equal(t, int(syscall.SIGKILL), exited[0].Exit.Signal)
	}
	restarting := evs.wait(t, EventRestarting, "web", 1)
	assert.Equal(t, pid, restarting[0].PID, "the process concerned: the one that stopped")
	assert.Equal(t, pid, restarting[0].OldPID)
	again := evs.wait(t, EventStarted, "web", 2)
	assert.NotEqual(t, pid, again[1].PID)
	var rec *statedir.Record
	waitFor(t, 5*time.Second, func() bool {
		rec, _ = m.state().Record("web")
		return rec != nil && State(rec.State) == StateRunning
	}, "recorded running")
	assert.Equal(t, 1, rec.Restarts)
	assert.Equal(t, again[1].PID, rec.PID)
}

func TestRunMaxRestartsGivesUp(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "exit-after", "400ms", "2", "--stderr=crash!")
	e.addProgram("loop", h.CommandLine(), "success_seconds = 0.2", "maxrestarts = 2")
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	gave := evs.wait(t, EventGaveUp, "loop", 1)
	assert.Equal(t, 2, gave[0].Restarts)
	waitSettled(t, m, "loop", StateGaveUp)
	assert.Len(t, evs.list(EventStarted, "loop"), 3, "1 autostart + 2 restarts, then nothing")
	assert.Len(t, evs.list(EventGaveUp, "loop"), 1, "gives up once")
	log, _ := os.ReadFile(e.path("loop.log"))
	assert.Equal(t, 3, strings.Count(string(log), "crash!"))
	rec, _ := m.state().Record("loop")
	require.NotNil(t, rec)
	assert.Equal(t, StateGaveUp, State(rec.State))
}

func TestRunExecErrorBacksOffLoopAlive(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	e.addProgram("bad", "/nonexistent/usrsvc-test-binary")
	e.addProgram("good", h.CommandLine())
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	evs.wait(t, EventStartFailed, "bad", 1)
	started := evs.wait(t, EventStarted, "good", 1)
	require.NoError(t, syscall.Kill(started[0].PID, syscall.SIGKILL))
	evs.wait(t, EventStarted, "good", 2)
	// Three failed starts, spaced by the backoff: at least 1 s (the floor
	// of restart_delay), then at least 2 s (doubled): not a tight loop.
	fails := evs.wait(t, EventStartFailed, "bad", 3)
	assert.GreaterOrEqual(t, fails[1].Time.Sub(fails[0].Time), 900*time.Millisecond, "retried after restart_delay's 1 s floor")
	assert.GreaterOrEqual(t, fails[2].Time.Sub(fails[1].Time), 1900*time.Millisecond, "backoff doubles")
	rec, _ := m.state().Record("bad")
	require.NotNil(t, rec)
	assert.Contains(t, []State{StateBackoff, StateStarting}, State(rec.State))
}

func TestRunRespectsManualStop(t *testing.T) {
	t.Parallel()
	e, h, m, _, started := superviseWeb(t)

	// Another tool (usrsvc) stops it by hand.
	other := e.manager()
	_, err := other.Do(ctxT(t), ActionStop, "web")
	require.NoError(t, err)
	assert.False(t, pidAlive(started[0].PID))
	waitSettled(t, m, "web", StateStoppedByHand)
	assert.Empty(t, h.PIDs(), "a program stopped by hand is not restarted")
	st, _ := other.Do(ctxT(t), ActionStatus, "web")
	assert.Equal(t, StateStoppedByHand, st.State)

	// A manual start: the daemon watches it again at once.
	st, err = other.Do(ctxT(t), ActionStart, "web")
	require.NoError(t, err)
	waitRecordedRunning(t, m, "web", st.Process.PID, "the daemon adopts the manually started process")
	require.NoError(t, syscall.Kill(st.Process.PID, syscall.SIGKILL))
	waitFor(t, 5*time.Second, func() bool {
		pids := h.PIDs()
		return len(pids) == 1 && pids[0] != st.Process.PID
	}, "restarted after a kill")
}

func TestRunRereadBrokenConfigKeepsOld(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	h2 := testproc.New(t, "sleep") // before runLoop: cleanups run in reverse, the loop stops first
	e.addProgram("web", h.CommandLine())
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	started := evs.wait(t, EventStarted, "web", 1)

	require.NoError(t, os.WriteFile(e.cfgPath, []byte("[Main]\npidfile = relative\n[Program:x]\ncomand = x\n"), 0o644))
	err := m.Reread(ctxT(t))
	require.Error(t, err)
	assert.Equal(t, exitcode.InvalidConfig, exitcode.Of(err))
	evs.wait(t, EventReloadFailed, "", 1)
	ack, err := m.state().ReloadAck()
	require.NoError(t, err)
	assert.False(t, ack.OK)
	assert.NotEmpty(t, ack.Problems)

	// The old configuration is in force: a killed program comes back.
	require.NoError(t, syscall.Kill(started[0].PID, syscall.SIGKILL))
	evs.wait(t, EventStarted, "web", 2)

	// A good reread: add a program, remove none.
	e.addProgram("worker", h2.CommandLine())
	e.write()
	require.NoError(t, m.Reread(ctxT(t)))
	evs.wait(t, EventStarted, "worker", 1)
	ack, _ = m.state().ReloadAck()
	assert.True(t, ack.OK)
	assert.Contains(t, ack.Message, "1 added")

	// Remove web: it is no longer managed, and never stopped.
	webPIDs := h.PIDs()
	e.programs = e.programs[1:]
	e.write()
	require.NoError(t, m.Reread(ctxT(t)))
	assert.Equal(t, webPIDs, h.PIDs())
	assert.False(t, inspect(t, m, "web").known, "a removed program is no longer supervised")
	require.NoError(t, syscall.Kill(webPIDs[0], syscall.SIGKILL))
	waitFor(t, 10*time.Second, func() bool { return len(h.PIDs()) == 0 }, "web killed")
	assert.False(t, inspect(t, m, "web").known, "and not restarted")
}

type flakyMonitor struct {
	mu    sync.Mutex
	calls int
}

func (f *flakyMonitor) Name() string { return "flaky" }
func (f *flakyMonitor) Check(ctx context.Context, p Process) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls == 2 {
		return errors.New("health check failed")
	}
	if f.calls == 3 {
		return fmt.Errorf("%w: %s", ErrMonitorUnavailable, "cannot reach it")
	}
	return nil
}

func TestRunCustomMonitorRestarts(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	e.addProgram("web", h.CommandLine(), "[[Monitor]]", "monitor_after = 0", "monitor_interval = 0.2")
	var evs events
	m := e.manager(recorder(&evs))
	_, err := m.AddMonitor("web", &flakyMonitor{})
	require.NoError(t, err)
	runLoop(t, m)
	started := evs.wait(t, EventStarted, "web", 1)
	failed := evs.wait(t, EventMonitorFailed, "web", 1)
	assert.Equal(t, "flaky", failed[0].Monitor)
	assert.Contains(t, failed[0].Reason, "health check failed")
	waitFor(t, 10*time.Second, func() bool {
		pids := h.PIDs()
		return len(pids) == 1 && pids[0] != started[0].PID
	}, "restarted by the monitor")
	evs.wait(t, EventMonitorError, "web", 1)
	// The loop emitted monitor-error while handling the check's result, in
	// which it would have decided a restart: inspect comes after it.
	v := inspect(t, m, "web")
	assert.False(t, v.busy, "a monitor's own error is not a restart")
	assert.Len(t, evs.list(EventMonitorFailed, "web"), 1, "a monitor's own error is not a restart")
}

func TestRunStalledLockDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	ha := testproc.New(t, "sleep")
	hb := testproc.New(t, "sleep")
	e.addProgram("a", ha.CommandLine())
	e.addProgram("b", hb.CommandLine())
	var evs events
	m := e.manager(recorder(&evs))
	// A stalled usrsvc holds a's lock.
	lock, err := m.state().Lock(ctxT(t), "a", time.Second)
	require.NoError(t, err)
	defer lock.Close()
	runLoop(t, m)
	started := evs.wait(t, EventStarted, "b", 1)
	require.NoError(t, syscall.Kill(started[0].PID, syscall.SIGKILL))
	evs.wait(t, EventStarted, "b", 2)
	assert.Empty(t, evs.list(EventStarted, "a"))
	lock.Close()
	evs.wait(t, EventStarted, "a", 1)
}

// A pid reused by an unrelated process is never signalled: the fixture
// /proc says the live pid has another start time than the one recorded.
func TestTerminateNeverSignalsReusedPid(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	pid := h.Detach(t)
	e.addProgram("web", h.CommandLine())
	m := e.manager()
	real, err := proc.Default().Process(pid)
	require.NoError(t, err)

	root := t.TempDir()
	dir := filepath.Join(root, strconv.Itoa(pid))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	require.NoError(t, err)
	fields := strings.Fields(string(stat)[strings.LastIndexByte(string(stat), ')')+2:])
	fields[19] = strconv.FormatUint(real.StartTicks+12345, 10) // field 22: another process
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stat"),
		[]byte(string(stat)[:strings.LastIndexByte(string(stat), ')')+2]+strings.Join(fields, " ")+"\n"), 0o644))
	cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cmdline"), cmdline, 0o644))
	btime, _ := os.ReadFile("/proc/stat")
	require.NoError(t, os.WriteFile(filepath.Join(root, "stat"), btime, 0o644))
	m.fs = proc.FS{Root: root}

	pc := m.Config().Program("web")
	remembered := &Process{PID: pid, StartTicks: real.StartTicks}
	how, err := m.terminate(ctxT(t), pc, m.matcher(), remembered)
	require.NoError(t, err)
	assert.Equal(t, "exited before it was signalled", how)
	assert.True(t, pidAlive(pid), "the process now holding the pid is never signalled")
}

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		delay time.Duration
		n     int
		want  time.Duration
	}{
		{0, 1, time.Second}, {0, 2, 2 * time.Second}, {0, 3, 4 * time.Second}, {0, 7, 60 * time.Second},
		{0, 50, 60 * time.Second}, {5 * time.Second, 1, 5 * time.Second}, {5 * time.Second, 2, 10 * time.Second},
		{90 * time.Second, 1, 90 * time.Second}, {90 * time.Second, 4, 90 * time.Second},
	} {
		assert.Equal(t, c.want, backoff(c.delay, c.n), "restart_delay %v, failure %d", c.delay, c.n)
	}
}

// The loop's timing decisions with an injected clock: no sleeps.
func TestLoopTimingInjectedClock(t *testing.T) {
	e := newTestEnv(t)
	e.addProgram("web", "/bin/true", "[[Monitor]]", "monitor_after = 30", "monitor_interval = 5", "rss_limit = 100000")
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m := e.manager(func(o *Options) { o.Now = func() time.Time { return now } })
	_, err := m.AddMonitor("web", &flakyMonitor{})
	require.NoError(t, err)
	l := &loop{m: m, progs: map[string]*supervised{}, msgs: make(chan message, 64), ctx: context.Background()}
	l.apply(m.Config())
	l.lastPass = now
	sv := l.progs["web"]
	sv.proc = &Process{PID: 1, StartTicks: 1}
	sv.pidfd = &proc.Pidfd{} // watched: no polling deadline
	sv.since, sv.state, sv.restarts = now, StateRunning, 3
	l.scheduleMonitors(sv)

	// First monitor round at monitor_after; restart count reset at 60 s; pass at 30 s.
	assert.Equal(t, now.Add(30*time.Second), sv.nextCheck)
	assert.Equal(t, now.Add(30*time.Second), l.nextWake(now))
	sv.nextCheck = now.Add(45 * time.Second)
	assert.Equal(t, now.Add(30*time.Second), l.nextWake(now), "the resolution pass")
	l.lastPass = now.Add(time.Hour)
	assert.Equal(t, now.Add(45*time.Second), l.nextWake(now))
	sv.nextCheck = time.Time{}
	assert.Equal(t, now.Add(60*time.Second), l.nextWake(now), "restart count reset after 60 s up")

	now = now.Add(61 * time.Second)
	l.tick()
	assert.Equal(t, 0, sv.restarts, "60 s of uptime resets the count")

	// Backoff: the retry is the next deadline.
	sv.proc, sv.state, sv.nextTry = nil, StateBackoff, now.Add(4*time.Second)
	assert.Equal(t, now.Add(4*time.Second), l.nextWake(now))
}

// usrsvc restart while usrsvcd watches: the daemon neither counts nor
// alerts it, and watches the new process.
func TestRunManualRestartIsNotARestart(t *testing.T) {
	t.Parallel()
	e, h, m, evs, started := superviseWeb(t)

	other := e.manager()
	st, err := other.Do(ctxT(t), ActionRestart, "web")
	require.NoError(t, err)
	require.NotEqual(t, started[0].PID, st.Process.PID)
	waitRecordedRunning(t, m, "web", st.Process.PID, "the daemon watches the restarted process")
	assert.Empty(t, evs.list(EventRestarting, "web"), "a manual restart is not an automatic one")
	rec, _ := m.state().Record("web")
	assert.Equal(t, 0, rec.Restarts)
	assert.Equal(t, []int{st.Process.PID}, h.PIDs())
}

// autostart = false: not started by the daemon; once started by hand it is
// supervised. autorestart = false: an exit is recorded, not restarted.
func TestRunAutostartAndAutorestartOff(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	lazy := testproc.New(t, "sleep")
	once := testproc.New(t, "sleep")
	e.addProgram("lazy", lazy.CommandLine(), "autostart = false")
	e.addProgram("once", once.CommandLine(), "autorestart = false")
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	started := evs.wait(t, EventStarted, "once", 1)
	waitSettled(t, m, "lazy", StateStopped)
	assert.Empty(t, lazy.PIDs(), "autostart = false")
	rec, _ := m.state().Record("lazy")
	require.NotNil(t, rec)
	assert.Equal(t, StateStopped, State(rec.State))

	require.NoError(t, syscall.Kill(started[0].PID, syscall.SIGKILL))
	evs.wait(t, EventExited, "once", 1)
	waitSettled(t, m, "once", StateStopped)
	assert.Empty(t, once.PIDs(), "autorestart = false")
	assert.Empty(t, evs.list(EventRestarting, "once"))

	st, err := e.manager().Do(ctxT(t), ActionStart, "lazy")
	require.NoError(t, err)
	waitRecordedRunning(t, m, "lazy", st.Process.PID, "the daemon supervises the manually started program")
	require.NoError(t, syscall.Kill(st.Process.PID, syscall.SIGKILL))
	waitFor(t, 10*time.Second, func() bool { p := lazy.PIDs(); return len(p) == 1 && p[0] != st.Process.PID }, "restarted (autorestart is on)")
}

// A manual stop outlives the loop that applied it: a new loop (a restarted
// usrsvcd) leaves the program stopped without trying to start it — no
// start-failed, no restart counted, no backoff, no gave-up.
func TestManualStopSurvivesNewLoop(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	e.addProgram("web", h.CommandLine(), "maxrestarts = 2")
	var evs events
	m := e.manager(recorder(&evs))
	stop := runLoop(t, m)
	evs.wait(t, EventStarted, "web", 1)
	_, err := m.Do(ctxT(t), ActionStop, "web")
	require.NoError(t, err)
	waitFor(t, 5*time.Second, func() bool {
		rec, _ := m.state().Record("web")
		return rec != nil && State(rec.State) == StateStoppedByHand
	}, "the loop records the manual stop")
	stop()

	var evs2 events
	ready := make(chan struct{})
	m2 := e.manager(recorder(&evs2), func(o *Options) { o.Ready = func() { close(ready) } })
	runLoop(t, m2)
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("the new loop never got ready")
	}
	// Ready comes after the first resolution of every program.
	rec, err := m2.state().Record("web")
	require.NoError(t, err)
	assert.Equal(t, StateStoppedByHand, State(rec.State))
	assert.Zero(t, rec.Restarts)
	for _, kind := range []EventKind{EventStartFailed, EventRestarting, EventGaveUp, EventStarted} {
		assert.Empty(t, evs2.list(kind, "web"), kind)
	}
	assert.Empty(t, h.PIDs())
}

// A manual stop that waits for the lock while the loop starts the program,
// and lands before the loop has taken in that start's result, leaves the
// program stopped by hand: not restarted, no backoff (found by the chaos
// suite's racing operators).
func TestManualStopRacingDaemonStart(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a := testproc.New(t, "sleep")
	b := testproc.New(t, "sleep")
	e.addProgram("a", a.CommandLine(), "success_seconds = 1")
	e.addProgram("b", b.CommandLine())
	var evs events
	var once sync.Once
	stopped := make(chan struct{})
	m := e.manager(func(o *Options) {
		o.OnEvent = func(ev Event) {
			evs.add(ev)
			if ev.Kind == EventExited && ev.Program == "b" {
				// Keep the loop busy while a's start ends and the stop
				// lands: until the stop has returned.
				once.Do(func() {
					select {
					case <-stopped:
					case <-time.After(time.Minute):
					}
				})
			}
		}
	})
	ctx := ctxT(t)
	stB, err := m.Do(ctx, ActionStart, "b")
	require.NoError(t, err)
	runLoop(t, m)
	a.WaitReady(t, 10*time.Second) // the loop's start of a is in its success window
	require.NoError(t, syscall.Kill(stB.Process.PID, syscall.SIGKILL))
	_, err = m.Do(ctx, ActionStop, "a") // waits for the start's lock, then stops a
	close(stopped)
	require.NoError(t, err)
	evs.wait(t, EventStarted, "b", 2) // the loop has resumed
	waitSettled(t, m, "a", StateStoppedByHand)
	assert.Empty(t, evs.list(EventRestarting, "a"), "a stopped by hand is not restarted")
	rec, err := m.state().Record("a")
	require.NoError(t, err)
	assert.Equal(t, StateStoppedByHand, State(rec.State))
	assert.Empty(t, a.PIDs())
}

// Rereads while exits are being reported: the loop's goroutines read
// nothing the loop changes. A reread replaced a program's configuration
// while a goroutine about to report its exit read the program's name from
// it (a data race the chaos suite's racing operators found under -race).
func TestRereadsWhileExitsAreReported(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for i := 0; i < 3; i++ {
		cmd, _ := uniqueSleep(t)
		e.addProgram("p"+strconv.Itoa(i), cmd, "success_seconds = 0.05")
	}
	var evs events
	m := e.manager(func(o *Options) {
		o.OnEvent = func(ev Event) {
			evs.add(ev)
			if ev.Kind == EventStarted {
				// Dead before the loop watches it: its exit is reported by
				// a goroutine while rereads keep coming.
				syscall.Kill(ev.PID, syscall.SIGKILL)
			}
		}
	})
	runLoop(t, m)
	cfg := e.config()
	ctx := ctxT(t)
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		require.NoError(t, m.Reload(ctx, cfg))
	}
	assert.NotEmpty(t, evs.list(EventExited, ""), "exits were reported meanwhile")
}

// A stop by hand (usrsvc stop, while usrsvcd supervises) is told once, at
// INFO, by the daemon: not as a stale pidfile and a crash (two WARN lines:
// the stop removes the pidfile a moment after the process is gone, and
// the loop used to look in between).
func TestManualStopLoggedOnceAsInfo(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmd, _ := uniqueSleep(t)
	e.addProgram("web", cmd)
	var evs events
	var log testproc.Buffer
	m := e.manager(recorder(&evs), func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&log, nil)) })
	runLoop(t, m)
	evs.wait(t, EventStarted, "web", 1)
	other := e.manager() // usrsvc: another Manager
	const rounds = 4
	for i := 1; i <= rounds; i++ {
		if i > 1 {
			st, err := other.Do(ctxT(t), ActionStart, "web")
			require.NoError(t, err)
			waitRecordedRunning(t, m, "web", st.Process.PID, "adopted")
		}
		_, err := other.Do(ctxT(t), ActionStop, "web")
		require.NoError(t, err)
		waitSettled(t, m, "web", StateStoppedByHand)
	}
	text := log.String()
	assert.NotContains(t, text, "level=WARN", "a stop by hand is no warning")
	assert.NotContains(t, text, "stale pidfile")
	assert.Empty(t, evs.list(EventExited, "web"))
	assert.Len(t, evs.list(EventStopped, "web"), rounds)
	// (killed by signal 15, or "exited (status unknown)" when init reaped it
	// before the daemon read it)
	assert.Equal(t, rounds, strings.Count(text, `level=INFO msg="web stopped by hand: `), text)
}

// A program that crashes a little after each successful start is a crash
// loop: from the second crash in a row less than 60 s after its start it
// backs off like a failed start, shows as backoff with its next try, and
// its last exit is the latest one.
func TestCrashLoopBacksOff(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "exit-after", "600ms", "3")
	e.addProgram("flaky", h.CommandLine(), "success_seconds = 0.2")
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	var rec *statedir.Record
	waitFor(t, 20*time.Second, func() bool {
		rec, _ = m.state().Record("flaky")
		return rec != nil && State(rec.State) == StateBackoff
	}, "the crash loop recorded as backoff")
	assert.False(t, rec.NextTry.IsZero(), "with its next try")
	require.NotNil(t, rec.LastExit)
	assert.Equal(t, 3, rec.LastExit.Status)
	started := evs.list(EventStarted, "flaky")
	assert.Len(t, started, 2, "the first crash is restarted at once, the second waits")
	st, err := m.Do(ctxT(t), ActionStatus, "flaky")
	require.NoError(t, err)
	assert.Equal(t, StateBackoff, st.State)
	assert.False(t, st.NextTry.IsZero())

	// The next try comes (at least a second later), and the one after it
	// later still: the backoff doubles.
	restarting := evs.wait(t, EventRestarting, "flaky", 3)
	assert.GreaterOrEqual(t, restarting[2].Time.Sub(restarting[1].Time), 900*time.Millisecond)
}

func TestCrashBackoff(t *testing.T) {
	assert.Zero(t, crashBackoff(0, 0))
	assert.Zero(t, crashBackoff(0, 1), "the first crash is restarted at once")
	assert.Equal(t, time.Second, crashBackoff(0, 2))
	assert.Equal(t, 2*time.Second, crashBackoff(0, 3))
	assert.Equal(t, 60*time.Second, crashBackoff(0, 20))
	assert.Equal(t, 5*time.Second, crashBackoff(5*time.Second, 2))
}

// The last exit of a program whose restarts fail is the latest failed
// start's, not the crash before them; when maxrestarts is reached the log
// promises no next try.
func TestLastExitOfFailedStarts(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmd, token := uniqueSleep(t)
	flag := e.path("broken")
	e.addProgram("app", fmt.Sprintf("if [ -e %s ]; then exit 5; fi; exec %s", flag, cmd),
		"useshell = true", "success_seconds = 0.5", "maxrestarts = 2")
	var evs events
	var log testproc.Buffer
	m := e.manager(recorder(&evs), func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&log, nil)) })
	runLoop(t, m)
	started := evs.wait(t, EventStarted, "app", 1)
	require.Equal(t, []int{started[0].PID}, testproc.PIDsMatching("sleep "+token))
	require.NoError(t, os.WriteFile(flag, nil, 0o600))
	require.NoError(t, syscall.Kill(started[0].PID, syscall.SIGKILL))
	gave := evs.wait(t, EventGaveUp, "app", 1)
	require.NotNil(t, gave[0].Exit)
	assert.True(t, gave[0].Exit.Exited)
	assert.Equal(t, 5, gave[0].Exit.Status, "gave up after a start that exited with 5")
	rec, err := m.state().Record("app")
	require.NoError(t, err)
	require.NotNil(t, rec.LastExit)
	assert.Equal(t, 5, rec.LastExit.Status, "last_exit is the latest exit, not the SIGKILL before the failed starts")
	st, err := m.Do(ctxT(t), ActionStatus, "app")
	require.NoError(t, err)
	require.NotNil(t, st.LastExit)
	assert.Equal(t, 5, st.LastExit.Status)

	lines := strings.Split(log.String(), "\n")
	for i, l := range lines {
		if strings.Contains(l, "gave up") && i > 0 {
			assert.NotContains(t, lines[i-1], "next try", "no next try is announced right before giving up")
		}
	}
	assert.Contains(t, log.String(), "maxrestarts (2) reached")
}
