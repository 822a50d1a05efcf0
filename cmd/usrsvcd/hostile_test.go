package main

// usrsvcd under hostile conditions: a FIFO in config_dir, names too long
// for the state directory, racing starts, SIGQUIT, a closed stdout, a full
// disk, a low open-file limit, a manual stop across a daemon restart.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/statedir"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// usrsvcdWithin runs the test binary as usrsvcd and fails the test (after
// killing it) when it does not return within d.
func (w *dworld) usrsvcdWithin(d time.Duration, args ...string) (int, string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"--config", w.cfg}, args...)...)
	cmd.Env = append(os.Environ(), asMain+"=1")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		w.t.Fatalf("usrsvcd %v did not return within %v: %s", args, d, out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	return code, string(out)
}

// A FIFO named *.cfg in config_dir is refused at once as "not a regular
// file" (130) by checkconfig, reread and the daemon's own reread; no tool
// and no daemon thread blocks opening it.
func TestConfigFIFO(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("a", h.CommandLine()))
	text, _ := os.ReadFile(w.cfg)
	require.NoError(t, os.WriteFile(w.cfg, []byte(strings.Replace(string(text), "[Main]\n", "[Main]\nconfig_dir = cfg\n", 1)), 0o644))
	cfgDir := filepath.Join(w.dir, "cfg")
	require.NoError(t, os.Mkdir(cfgDir, 0o755))
	dpid := w.startDaemon()
	onePID(t, h)

	fifo := filepath.Join(cfgDir, "zz.cfg")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	code, out := w.usrsvcdWithin(10*time.Second, "checkconfig")
	assert.Equal(t, 130, code, out)
	assert.Contains(t, out, "zz.cfg: not a regular file")
	code, out = w.usrsvcdWithin(10*time.Second, "reread")
	assert.Equal(t, 130, code, out)
	assert.Contains(t, out, "zz.cfg: not a regular file")

	// The daemon's own reread (a raw SIGUSR1) refuses it and stays responsive.
	require.NoError(t, syscall.Kill(dpid, syscall.SIGUSR1))
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(w.log(), "zz.cfg: not a regular file") },
		"the daemon logs the refused reread")
	w.usrsvcdWithin(10*time.Second, "status")
	w.usrsvcdWithin(10*time.Second, "stop")
	require.NoError(t, os.Remove(fifo))
	code, out = w.usrsvcdWithin(30*time.Second, "stop")
	assert.Equal(t, 0, code, out)
	assert.False(t, pidAlive(dpid), "the daemon answered SIGTERM: no thread of it sits in the FIFO")
	assert.Len(t, h.PIDs(), 1, "the program keeps running")
}

// checkconfig and start agree on program names: a name too long for the
// state directory's file names is a config error (130, file:line), and the
// longest accepted name is started, recorded and locked like any other.
func TestProgramNameLength(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	long := strings.Repeat("n", 300)
	w := newDWorld(t, dprogram(long, h.CommandLine()))
	code, out := w.usrsvcdWithin(10*time.Second, "checkconfig")
	assert.Equal(t, 130, code, out)
	assert.Contains(t, out, w.cfg+":6: program name is 300 characters long; at most 100 fit")
	code, out = w.usrsvcdWithin(10*time.Second, "start")
	if !assert.Equal(t, 130, code, out) && code == 0 {
		w.usrsvcd("stop")
	}

	longest := strings.Repeat("n", 100)
	w.write(dprogram(longest, h.CommandLine()))
	code, out = w.usrsvcdWithin(10*time.Second, "checkconfig")
	require.Equal(t, 0, code, out)
	w.startDaemon()
	pid := onePID(t, h)
	rec := filepath.Join(w.dir, "state", "programs", longest+".daemon.json")
	waitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(rec)
		return strings.Contains(string(data), `"state":"running"`) && strings.Contains(string(data), strconv.Itoa(pid))
	}, "the daemon records the program")
	assert.FileExists(t, filepath.Join(w.dir, "state", "locks", longest+".lock"))
	assert.NotContains(t, w.log(), "level=ERROR")
	code, out = w.usrsvcdWithin(30*time.Second, "stop")
	assert.Equal(t, 0, code, out)
}

// Concurrent `usrsvcd start`s: exactly one daemon; every loser exits 135
// naming the pid of the daemon that runs, never 254.
func TestConcurrentDaemonStarts(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("a", h.CommandLine()))
	for round := 0; round < 3; round++ {
		const n = 3
		type result struct {
			code int
			out  string
		}
		results := make(chan result, n)
		for i := 0; i < n; i++ {
			go func() {
				cmd := exec.Command(os.Args[0], "--config", w.cfg, "start")
				cmd.Env = append(os.Environ(), asMain+"=1")
				out, err := cmd.CombinedOutput()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					code = -1
				}
				results <- result{code, string(out)}
			}()
		}
		var all []result
		for i := 0; i < n; i++ {
			all = append(all, <-results)
		}
		var dpid int
		if data, err := os.ReadFile(filepath.Join(w.dir, "usrsvcd.pid")); err == nil {
			dpid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		}
		if dpid > 0 {
			t.Cleanup(func() {
				if pidAlive(dpid) {
					syscall.Kill(dpid, syscall.SIGKILL)
				}
			})
		}
		winners := 0
		for _, r := range all {
			switch r.code {
			case 0:
				winners++
			case 135:
				assert.Contains(t, r.out, fmt.Sprintf("usrsvcd is already running (pid %d)", dpid), "round %d", round)
			default:
				t.Errorf("round %d: a concurrent start exited %d: %s", round, r.code, r.out)
			}
		}
		assert.Equal(t, 1, winners, "round %d: %v", round, all)
		// One daemon: a forked launcher carries the daemon's title for an
		// instant before it execs, so wait for a steady count.
		waitFor(t, 5*time.Second, func() bool { return len(testproc.PIDsMatching("usrsvcd --config "+w.cfg)) == 1 },
			fmt.Sprintf("round %d: exactly one daemon", round))
		code, out := w.usrsvcdWithin(30*time.Second, "stop")
		require.Equal(t, 0, code, out)
	}
	assert.Len(t, h.PIDs(), 1)
}

// SIGQUIT: a goroutine dump in the log, then the shutdown of SIGTERM
// (pidfile removed, programs untouched).
func TestDaemonSIGQUIT(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("a", h.CommandLine()))
	dpid := w.startDaemon()
	pid := onePID(t, h)
	require.NoError(t, syscall.Kill(dpid, syscall.SIGQUIT))
	waitFor(t, 15*time.Second, func() bool { return !pidAlive(dpid) }, "the daemon exits on SIGQUIT")
	log := w.log()
	assert.Contains(t, log, "goroutine ", "the stack dump is in the log")
	assert.Contains(t, log, "received SIGQUIT")
	assert.NoFileExists(t, filepath.Join(w.dir, "usrsvcd.pid"), "the pidfile is removed")
	assert.Equal(t, []int{pid}, h.PIDs(), "the program keeps running")
	code, out := w.usrsvcdWithin(10*time.Second, "status")
	assert.Equal(t, 1, code, out)
}

// A closed stdout (usrsvcd start | true) does not turn a good start into
// death by SIGPIPE: the client returns the real outcome.
func TestDaemonStartToClosedPipe(t *testing.T) {
	t.Parallel()
	w := newDWorld(t)
	r, wp, err := os.Pipe()
	require.NoError(t, err)
	r.Close()
	cmd := exec.Command(os.Args[0], "--config", w.cfg, "start")
	cmd.Env = append(os.Environ(), asMain+"=1")
	cmd.Stdout = wp
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	wp.Close()
	if data, err := os.ReadFile(filepath.Join(w.dir, "usrsvcd.pid")); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid > 0 {
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		}
	}
	require.NoError(t, err, "usrsvcd start | true: %v %s", cmd.ProcessState, stderr.String())
	code, out := w.usrsvcdWithin(10*time.Second, "status")
	assert.Equal(t, 0, code, out)
	code, out = w.usrsvcdWithin(30*time.Second, "stop")
	assert.Equal(t, 0, code, out)
}

// Disk full (the state directory on a small tmpfs; root only): usrsvcd
// reread says at once that the acknowledgement cannot be written, with the
// cause and code 11, instead of waiting 10 s for it.
func TestRereadDiskFull(t *testing.T) {
	t.Parallel()
	disk := testproc.Tmpfs(t, 512<<10)
	h := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("a", h.CommandLine()))
	text, _ := os.ReadFile(w.cfg)
	require.NoError(t, os.WriteFile(w.cfg, []byte(strings.Replace(string(text),
		"state_dir = "+w.dir+"/state", "state_dir = "+disk+"/state", 1)), 0o644))
	w.startDaemon()
	onePID(t, h)
	free := testproc.Fill(t, disk)
	start := time.Now()
	code, out := w.usrsvcdWithin(30*time.Second, "reread")
	assert.Less(t, time.Since(start), 5*time.Second, "answers at once: %s", out)
	assert.Equal(t, 11, code, out)
	assert.Contains(t, out, "acknowledgement cannot be written")
	assert.Contains(t, out, "no space left on device (ENOSPC)")
	free()
	code, out = w.usrsvcdWithin(30*time.Second, "reread")
	assert.Equal(t, 0, code, out)
	code, out = w.usrsvcdWithin(30*time.Second, "stop")
	assert.Equal(t, 0, code, out)
}

// A manual stop survives a daemon restart silently: the new daemon makes
// no start attempt, counts nothing, backs off from nothing, logs no
// failure and sends no alert (maxrestarts = 2 would turn false failures
// into a false gave-up mail).
func TestManualStopAcrossDaemonRestart(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	other := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("p1", h.CommandLine(), "maxrestarts = 2", "email_alerts = ops@example.org"),
		dprogram("p2", other.CommandLine()))
	mails := filepath.Join(w.dir, "mails")
	fake := filepath.Join(w.dir, "sendmail")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\ncat >> "+mails+"\n"), 0o755))
	text, _ := os.ReadFile(w.cfg)
	require.NoError(t, os.WriteFile(w.cfg, []byte(strings.Replace(string(text), "[Main]\n", "[Main]\nsendmail_path = "+fake+"\n", 1)), 0o644))
	w.startDaemon()
	onePID(t, h)
	onePID(t, other)

	cfg, err := usrsvc.LoadConfig(w.cfg)
	require.NoError(t, err)
	m, err := usrsvc.NewManager(cfg, usrsvc.Options{})
	require.NoError(t, err)
	_, err = m.Do(context.Background(), usrsvc.ActionStop, "p1") // what usrsvc stop p1 does
	require.NoError(t, err)
	waitFor(t, 10*time.Second, func() bool {
		st, err := m.Do(context.Background(), usrsvc.ActionStatus, "p1")
		return err == nil && st.State == usrsvc.StateStoppedByHand
	}, "the daemon records the manual stop")

	restarted := time.Now()
	code, out := w.usrsvcdWithin(60*time.Second, "restart")
	require.Equal(t, 0, code, out)
	dpid := w.daemonPID()
	t.Cleanup(func() { syscall.Kill(dpid, syscall.SIGKILL) })

	// The new daemon is up (it resolved every program before saying so):
	// its record of p1 says stopped by hand, with no attempt in between.
	st, err := m.Do(context.Background(), usrsvc.ActionStatus, "p1")
	require.NoError(t, err)
	rec, err := statedir.Dir(cfg.StateDir).Record("p1")
	require.NoError(t, err)
	require.NotNil(t, rec)
	assert.False(t, rec.Updated.Before(restarted), "written by the new daemon: %+v", rec)
	assert.Equal(t, string(usrsvc.StateStoppedByHand), rec.State, "%+v", rec)
	assert.Zero(t, rec.Restarts)
	assert.False(t, st.Running)
	assert.Equal(t, usrsvc.StateStoppedByHand, st.State)
	require.True(t, st.Recorded)
	assert.Zero(t, st.Restarts)
	assert.Empty(t, h.PIDs(), "p1 stays stopped")

	// Whatever the new daemon does next concerns p2 only: a kill of p2
	// is noticed and restarted, and by then p1 has seen nothing.
	p2 := onePID(t, other)
	require.NoError(t, syscall.Kill(p2, syscall.SIGKILL))
	waitFor(t, 15*time.Second, func() bool { p := other.PIDs(); return len(p) == 1 && p[0] != p2 }, "p2 restarted")
	log := w.log()
	for _, bad := range []string{"p1: start failed", "p1 restarting", "p1 gave up", `program=p1 event=backoff`} {
		assert.NotContains(t, log, bad)
	}
	_, err = os.Stat(mails)
	assert.True(t, os.IsNotExist(err), "no alert mailed")
	code, out = w.usrsvcdWithin(30*time.Second, "stop")
	assert.Equal(t, 0, code, out)
}

// exitedPIDs returns the pids of the "exited" events of the log.
func exitedPIDs(log string) []int {
	var pids []int
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "event=exited") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "pid="); ok {
				if pid, err := strconv.Atoi(v); err == nil {
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids
}

// A low open-file limit (like prlimit --nofile=32:32 usrsvcd start, with
// 40 programs): usrsvcd warns once with the fix, starts every program
// anyway (starts are spread, pidfds that cannot be opened fall back to
// polling /proc), restarts killed ones, and never logs a live process as
// exited.
func TestLowOpenFileLimit(t *testing.T) {
	t.Parallel()
	const n = 40
	var helpers []*testproc.Helper
	var progs []string
	for i := 0; i < n; i++ {
		h := testproc.New(t, "sleep")
		helpers = append(helpers, h)
		progs = append(progs, dprogram(fmt.Sprintf("p%02d", i), h.CommandLine()))
	}
	w := newDWorld(t, progs...)
	argv := testproc.WithOpenFileLimit(32, os.Args[0], "--config", w.cfg, "start")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), asMain+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	dpid := w.daemonPID()
	t.Cleanup(func() { syscall.Kill(dpid, syscall.SIGKILL) })
	limits, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", dpid))
	require.Regexp(t, `Max open files\s+32\s+32\s`, string(limits))

	running := func() int {
		up := 0
		for _, h := range helpers {
			if len(h.PIDs()) == 1 {
				up++
			}
		}
		return up
	}
	waitFor(t, 90*time.Second, func() bool { return running() == n }, fmt.Sprintf("all %d programs running", n))
	log := w.log()
	assert.Equal(t, 1, strings.Count(log, "open-file limit"), "warned once:\n%s", log)
	assert.Contains(t, log, "LimitNOFILE")

	// Kill a few: each comes back.
	var killed []int
	for _, h := range helpers[:3] {
		pid := h.PIDs()[0]
		killed = append(killed, pid)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	}
	waitFor(t, 60*time.Second, func() bool {
		for i, h := range helpers[:3] {
			if p := h.PIDs(); len(p) != 1 || p[0] == killed[i] {
				return false
			}
		}
		return true
	}, "the killed programs restarted")
	waitFor(t, 30*time.Second, func() bool { return running() == n }, "all programs running")
	log = w.log()
	for _, pid := range exitedPIDs(log) {
		assert.False(t, pidAlive(pid), "pid %d was logged as exited but runs:\n%s", pid, log)
	}
	assert.NotContains(t, log, "insufficient permissions")
	for _, h := range helpers {
		assert.Len(t, h.PIDs(), 1, "no program started twice")
	}
	code, o := w.usrsvcdWithin(30*time.Second, "stop")
	assert.Equal(t, 0, code, o)
}

// Disk full under the daemon (state directory and pidfiles on a small
// tmpfs; root only): restarts still happen; every failed write is logged as
// such, once per cause, not per attempt; once space is freed the daemon
// writes the pidfiles and records it owes without anything else happening.
func TestDaemonDiskFull(t *testing.T) {
	t.Parallel()
	disk := testproc.Tmpfs(t, 512<<10)
	var helpers []*testproc.Helper
	var progs []string
	for _, name := range []string{"p1", "p2", "p3"} {
		h := testproc.New(t, "sleep")
		helpers = append(helpers, h)
		progs = append(progs, strings.Replace(dprogram(name, h.CommandLine()),
			"pidfile = DIR/"+name+".pid", "pidfile = "+disk+"/"+name+".pid", 1))
	}
	w := newDWorld(t, progs...)
	text, _ := os.ReadFile(w.cfg)
	require.NoError(t, os.WriteFile(w.cfg, []byte(strings.Replace(string(text),
		"state_dir = "+w.dir+"/state", "state_dir = "+disk+"/state", 1)), 0o644))
	w.startDaemon()
	sd := w.cfg
	for i, h := range helpers {
		waitRecorded(t, sd, fmt.Sprintf("p%d", i+1), onePID(t, h))
	}

	// Without their old pidfiles (which a restart would remove as stale,
	// freeing room for the new ones), the disk stays full.
	for _, name := range []string{"p1", "p2"} {
		require.NoError(t, os.Remove(disk+"/"+name+".pid"))
	}
	free := testproc.Fill(t, disk)
	var killed []int
	for _, h := range helpers[:2] {
		pid := h.PIDs()[0]
		killed = append(killed, pid)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	}
	newPIDs := make([]int, 2)
	waitFor(t, 30*time.Second, func() bool {
		for i, h := range helpers[:2] {
			p := h.PIDs()
			if len(p) != 1 || p[0] == killed[i] {
				return false
			}
			newPIDs[i] = p[0]
		}
		return true
	}, "p1 and p2 restarted on a full disk")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("usrsvcd's log:\n%s", w.log())
		}
	})
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(w.log(), "p2: cannot write pidfile") && strings.Contains(w.log(), "p1: cannot write pidfile")
	}, "the failed pidfile writes are logged")
	time.Sleep(3 * time.Second) // a few retry rounds on the full disk
	log := w.log()
	assert.Contains(t, log, "no space left on device (ENOSPC)")
	assert.Equal(t, 1, strings.Count(log, "cannot record state"), "once per cause:\n%s", log)
	assert.Equal(t, 2, strings.Count(log, "cannot write pidfile"), "once per program and cause:\n%s", log)

	free()
	for i, name := range []string{"p1", "p2"} {
		pidfile := disk + "/" + name + ".pid"
		waitFor(t, 10*time.Second, func() bool {
			data, _ := os.ReadFile(pidfile)
			return strings.TrimSpace(string(data)) == strconv.Itoa(newPIDs[i])
		}, "the daemon rewrites "+pidfile)
		waitRecorded(t, sd, name, newPIDs[i])
	}
	assert.Contains(t, w.log(), "written again")
	code, out := w.usrsvcdWithin(30*time.Second, "stop")
	assert.Equal(t, 0, code, out)
}

// waitRecorded waits until the daemon's record of name in the state
// directory of the configuration cfgPath says running as pid. It reads the
// record file itself: a status would act (write a pidfile after a scan).
func waitRecorded(t *testing.T, cfgPath string, name string, pid int) {
	t.Helper()
	cfg, err := usrsvc.LoadConfig(cfgPath)
	require.NoError(t, err)
	sd := statedir.Dir(cfg.StateDir)
	waitFor(t, 10*time.Second, func() bool {
		rec, err := sd.Record(name)
		return err == nil && rec != nil && rec.State == string(usrsvc.StateRunning) && rec.PID == pid
	}, fmt.Sprintf("%s recorded running as %d", name, pid))
}

// The run time logged for an exit is the process's own, from its start: a
// program killed while usrsvcd was stopped (SIGSTOP) is not said to have
// run until usrsvcd noticed; the log gives the bounds it knows.
func TestRunTimeWhileDaemonStopped(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("p", h.CommandLine()))
	dpid := w.startDaemon()
	pid := onePID(t, h)
	waitRecorded(t, w.cfg, "p", pid)

	// Killed while the daemon runs: an exact run time.
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(w.log(), fmt.Sprintf("event=exited program=p pid=%d", pid)) }, "exit logged")
	line := logLine(w.log(), fmt.Sprintf("pid=%d", pid))
	assert.Regexp(t, `after running \d`, line)
	assert.NotContains(t, line, "at least")
	pid = onePID(t, h)
	waitRecorded(t, w.cfg, "p", pid)

	// Killed 1 s into a 10 s SIGSTOP of the daemon.
	require.NoError(t, syscall.Kill(dpid, syscall.SIGSTOP))
	stopped := true
	t.Cleanup(func() {
		if stopped {
			syscall.Kill(dpid, syscall.SIGCONT)
		}
	})
	time.Sleep(time.Second)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	time.Sleep(9 * time.Second)
	require.NoError(t, syscall.Kill(dpid, syscall.SIGCONT))
	stopped = false
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(w.log(), fmt.Sprintf("event=exited program=p pid=%d", pid)) }, "exit logged")
	line = logLine(w.log(), fmt.Sprintf("pid=%d", pid))
	assert.Contains(t, line, "at least", "the run time is a bound, not the time to detection: %s", line)
	assert.Contains(t, line, "at most", line)
	code, out := w.usrsvcdWithin(30*time.Second, "stop")
	assert.Equal(t, 0, code, out)
}

// logLine returns the first "exited" line of log containing s.
func logLine(log, s string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "event=exited") && strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
