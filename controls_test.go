package usrsvc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// stop_signal: a program that ignores SIGTERM stops at once on SIGINT.
func TestStopSignal(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "ignore-term")
	e.addProgram("stubborn", h.CommandLine(), "stop_signal = INT", "term_to_kill_seconds = 30")
	m := e.manager()
	_, err := m.Do(ctxT(t), ActionStart, "stubborn")
	require.NoError(t, err)
	t0 := time.Now()
	st, err := m.Do(ctxT(t), ActionStop, "stubborn")
	require.NoError(t, err)
	assert.Equal(t, "stopped with SIGINT", st.Message)
	assert.Less(t, time.Since(t0), 20*time.Second, "not after term_to_kill_seconds (30 s)")
	assert.Empty(t, h.PIDs())
}

// stop_group: a program with two children (one session) is stopped with
// its whole session; without it, the children are the program's business.
func TestStopGroup(t *testing.T) {
	t.Parallel()
	for _, group := range []bool{true, false} {
		t.Run(fmt.Sprint("stop_group=", group), func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			h := testproc.New(t, "spawn-child", "--count=2")
			e.addProgram("tree", h.CommandLine(), "stop_group = "+strconv.FormatBool(group), "success_seconds = 1")
			m := e.manager()
			st, err := m.Do(ctxT(t), ActionStart, "tree")
			require.NoError(t, err)
			waitFor(t, 10*time.Second, func() bool { return len(h.PIDs()) == 3 }, "the program and its two children")
			_, err = m.Do(ctxT(t), ActionStop, "tree")
			require.NoError(t, err)
			if group {
				waitFor(t, 10*time.Second, func() bool { return len(h.PIDs()) == 0 }, "the whole session stopped")
				return
			}
			left := h.PIDs()
			assert.Len(t, left, 2, "the children stay")
			assert.NotContains(t, left, st.Process.PID)
		})
	}
}

// reload sends reload_signal with the pid unchanged; a program without one
// refuses, with a clear message and code 131.
func TestReload(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	out := e.path("hups")
	h := testproc.New(t, "on-hup", "--out="+out)
	e.addProgram("web", h.CommandLine(), "reload_signal = HUP")
	plain := testproc.New(t, "sleep")
	e.addProgram("plain", plain.CommandLine())
	m := e.manager()
	st, err := m.Do(ctxT(t), ActionStart, "web")
	require.NoError(t, err)
	pid := st.Process.PID
	st, err = m.Do(ctxT(t), ActionReload, "web")
	require.NoError(t, err)
	assert.Equal(t, "reloaded (SIGHUP)", st.Message)
	assert.Equal(t, pid, st.Process.PID)
	waitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(out)
		return string(data) == fmt.Sprintf("hup %d\n", pid)
	}, "HUP delivered to the same process")

	_, err = m.Do(ctxT(t), ActionStart, "plain")
	require.NoError(t, err)
	_, err = m.Do(ctxT(t), ActionReload, "plain")
	assert.ErrorIs(t, err, ErrInvalidAction)
	assert.Equal(t, exitcode.InvalidAction, exitcode.Of(err))
	assert.ErrorContains(t, err, "plain has no reload_signal")
	// "all" reloads the programs that can be.
	res := m.DoAll(ctxT(t), ActionReload, nil, false)
	require.Len(t, res, 1)
	assert.Equal(t, "web", res[0].Program)
	assert.NoError(t, res[0].Err)
}

// A program that re-executes itself on its reload signal (a new process,
// the old one exits, as nginx and unicorn do on USR2) is followed by
// usrsvcd: no restart, no alert.
func TestReloadReexecIsFollowed(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "reexec")
	e.addProgram("master", h.CommandLine(), "reload_signal = USR2")
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	old := evs.wait(t, EventStarted, "master", 1)[0].PID
	waitRecordedRunning(t, m, "master", old, "running")
	_, err := m.Do(ctxT(t), ActionReload, "master")
	require.NoError(t, err)
	var next int
	waitFor(t, 15*time.Second, func() bool {
		pids := h.PIDs()
		if len(pids) == 1 && pids[0] != old {
			next = pids[0]
			return true
		}
		return false
	}, "the successor alone")
	waitRecordedRunning(t, m, "master", next, "the successor followed")
	assert.Empty(t, evs.list(EventRestarting, "master"), "not a restart")
	assert.Empty(t, evs.list(EventExited, "master"), "not an exit")
	assert.Zero(t, inspect(t, m, "master").restarts)
}

// autorestart = unexpected: a clean exit (an exit status of exit_codes)
// stays down in state exited; another status is restarted.
func TestAutorestartUnexpected(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	clean := testproc.New(t, "exit-after", "600ms", "0")
	e.addProgram("clean", clean.CommandLine(), "autorestart = unexpected", "success_seconds = 0.2")
	two := testproc.New(t, "exit-after", "600ms", "2")
	e.addProgram("two", two.CommandLine(), "autorestart = unexpected", "exit_codes = 0, 2", "success_seconds = 0.2")
	bad := testproc.New(t, "exit-after", "600ms", "3")
	e.addProgram("bad", bad.CommandLine(), "autorestart = unexpected", "success_seconds = 0.2")
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	for _, name := range []string{"clean", "two"} {
		evs.wait(t, EventExited, name, 1)
		waitSettled(t, m, name, StateExited)
	}
	evs.wait(t, EventRestarting, "bad", 1)
	assert.Empty(t, evs.list(EventRestarting, "clean"))
	assert.Empty(t, evs.list(EventRestarting, "two"))
	st, err := m.Do(ctxT(t), ActionStatus, "clean")
	require.NoError(t, err)
	assert.Equal(t, StateExited, st.State)
	require.NotNil(t, st.LastExit)
	assert.Equal(t, 0, st.LastExit.Status)
}

// env_file sits between the inherited environment and [[Env]].
func TestEnvFilePrecedence(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	envFile := e.path("app.env")
	require.NoError(t, os.WriteFile(envFile, []byte("# app\nFROM_FILE=file\nexport BOTH=file\nINHERITED=file\n"), 0o600))
	h := testproc.New(t, "print-env", "INHERITED", "FROM_FILE", "BOTH", "ONLY_ENV")
	e.addProgram("app", h.CommandLine(), "env_file = "+envFile, "[[Env]]", "BOTH = env", "ONLY_ENV = env")
	m := e.manager(func(o *Options) { o.Environ = []string{"PATH=/usr/bin:/bin", "INHERITED=caller", "FROM_FILE=caller"} })
	_, err := m.Do(ctxT(t), ActionStart, "app")
	require.NoError(t, err)
	waitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(e.path("app.log"))
		return strings.Count(string(data), "\n") >= 4
	}, "the environment printed")
	data, _ := os.ReadFile(e.path("app.log"))
	assert.Equal(t, "INHERITED=file\nFROM_FILE=file\nBOTH=env\nONLY_ENV=env\n", string(data))

	// The file changes: status says so, a restart applies it.
	require.NoError(t, os.WriteFile(envFile, []byte("FROM_FILE=new\n"), 0o600))
	st, err := m.Do(ctxT(t), ActionStatus, "app")
	require.NoError(t, err)
	assert.Contains(t, strings.Join(st.Warnings, "\n"), "its environment changed since it started (FROM_FILE")
}

// limit_nofile and umask are the program's own.
func TestLimitsAndUmask(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	// Not a Go program: Go's runtime raises its own soft open-files limit.
	e.addProgram("lim", fmt.Sprintf("/bin/sleep 9%d.%d", os.Getpid(), time.Now().UnixNano()%1000000), "limit_nofile = 321:654", "umask = 027")
	m := e.manager()
	st, err := m.Do(ctxT(t), ActionStart, "lim")
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Kill(st.Process.PID, syscall.SIGKILL) })
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", st.Process.PID))
	require.NoError(t, err)
	assert.Regexp(t, `Max open files\s+321\s+654\s+files`, string(limits))
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.Process.PID))
	require.NoError(t, err)
	assert.Contains(t, string(status), "Umask:\t0027")

	// Above the account's hard limit: refused, naming the limit.
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if os.Geteuid() != 0 && lim.Max < 1<<30 {
		e.addProgram("over", testproc.New(t, "sleep").CommandLine(), fmt.Sprintf("limit_nofile = %d", lim.Max+1))
		_, err = e.manager().Do(ctxT(t), ActionStart, "over")
		assert.ErrorContains(t, err, "RLIMIT_NOFILE")
	}
}

// numprocs: instances with their own pids, started together by the
// section's name and stopped one by one.
func TestNumprocsInstances(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	e.programs = append(e.programs, "[Program:worker]\nnumprocs = 3\ncommand = "+h.CommandLine()+" slot%(process_num)d\n"+
		"stdout = "+filepath.Join(e.dir, "worker-%(process_num)d.log")+"\nsuccess_seconds = 0.3\n")
	m := e.manager()
	res := m.DoAll(ctxT(t), ActionStart, []string{"worker"}, true)
	require.Len(t, res, 3)
	pids := map[int]bool{}
	for i, r := range res {
		require.NoError(t, r.Err)
		assert.Equal(t, fmt.Sprintf("worker_%02d", i), r.Program)
		pids[r.Status.Process.PID] = true
		assert.Contains(t, r.Status.Process.Title, fmt.Sprintf("slot%d", i))
	}
	assert.Len(t, pids, 3, "three processes")
	_, err := m.Do(ctxT(t), ActionStop, "worker_01")
	require.NoError(t, err)
	res = m.DoAll(ctxT(t), ActionStatus, []string{"worker"}, false)
	require.Len(t, res, 3)
	assert.True(t, res[0].Status.Running)
	assert.False(t, res[1].Status.Running)
	assert.True(t, res[2].Status.Running)
	for _, r := range m.DoAll(ctxT(t), ActionStop, []string{"worker"}, true) {
		require.NoError(t, r.Err)
	}
}
