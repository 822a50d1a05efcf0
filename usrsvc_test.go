package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/launch"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestStartStopDetached(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmdline, _ := uniqueSleep(t)
	e.addProgram("web", cmdline)
	m := e.manager()
	ctx := ctxT(t)

	st, err := m.Do(ctx, ActionStart, "web")
	require.NoError(t, err)
	require.True(t, st.Running)
	require.Equal(t, "started", st.Message)
	pid := st.Process.PID
	sleepExe, _ := filepath.EvalSymlinks("/bin/sleep")
	assert.Equal(t, sleepExe, st.Process.Executable)

	// Not our child, its own session, stdin /dev/null, stdout appended to the log.
	f := procStatFields(t, pid)
	ppid, _ := strconv.Atoi(f[1])
	sid, _ := strconv.Atoi(f[3])
	assert.NotEqual(t, os.Getpid(), ppid, "the program must not be our child")
	assert.Equal(t, pid, sid, "the program leads its own session")
	stdin, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", pid))
	assert.Equal(t, "/dev/null", stdin)
	stdout, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/1", pid))
	assert.Equal(t, e.path("web.log"), stdout)
	// Nothing else of ours leaks into it (no lock fd, no pipe).
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		n, _ := strconv.Atoi(fd.Name())
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if n > 2 && !strings.HasPrefix(target, "anon_inode:") {
			t.Errorf("fd %d -> %s leaked into the program", n, target)
		}
	}
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	assert.NotContains(t, string(env), launch.EnvMarker)

	data, err := os.ReadFile(e.path("web.pid"))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("%d\n", pid), string(data))

	// start again: already running, same pid.
	st, err = m.Do(ctx, ActionStart, "web")
	require.NoError(t, err)
	assert.Equal(t, "already running", st.Message)
	assert.Equal(t, pid, st.Process.PID)

	st, err = m.Do(ctx, ActionStatus, "web")
	require.NoError(t, err)
	assert.True(t, st.Running)

	st, err = m.Do(ctx, ActionStop, "web")
	require.NoError(t, err)
	assert.Equal(t, "terminated", st.Message)
	assert.False(t, pidAlive(pid))
	_, err = os.Stat(e.path("web.pid"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "pidfile removed")

	st, err = m.Do(ctx, ActionStatus, "web")
	require.NoError(t, err)
	assert.False(t, st.Running)
	assert.True(t, (st.State == StateStoppedByHand))
	assert.Equal(t, StateStoppedByHand, st.State)

	st, err = m.Do(ctx, ActionStop, "web")
	require.NoError(t, err)
	assert.Equal(t, "not running", st.Message)
}

func TestStartForkAndExit(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "fork-and-exit")
	// The daemon child has the same argv but behaviour "sleep": match its token.
	// A window long enough for the helper to fork under load.
	e.addProgram("daemon", h.CommandLine(), "proctitle_re = "+h.Token+".* sleep|sleep .*"+h.Token, "success_seconds = 2")
	m := e.manager()
	st, err := m.Do(ctxT(t), ActionStart, "daemon")
	require.NoError(t, err, "a fork-and-exit daemon must start fine")
	require.True(t, st.Running)
	assert.Equal(t, h.PIDs(), []int{st.Process.PID})
	assert.Contains(t, st.Process.Title, "sleep")
}

func TestStartCrashReportsStderr(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "exit-after", "50ms", "3", "--stderr=database is down")
	// A window far longer than the crash takes, so that reporting at the
	// crash and not at the window's end shows on any machine's load.
	e.addProgram("crash", h.CommandLine(), "success_seconds = 30")
	m := e.manager()
	start := time.Now()
	st, err := m.Do(ctxT(t), ActionStart, "crash")
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrExited), "%v", err)
	assert.Equal(t, exitcode.ProgramExited, exitcode.Of(err))
	assert.Contains(t, err.Error(), "exited with status 3")
	assert.Contains(t, strings.Join(st.Stderr, "\n"), "database is down")
	require.NotNil(t, st.LastExit)
	assert.Equal(t, 3, st.LastExit.Status)
	assert.Less(t, time.Since(start), 20*time.Second, "a crash is reported when the tree is gone, not at the end of the window")

	// A second crash: only the lines of this launch.
	st, err = m.Do(ctxT(t), ActionStart, "crash")
	require.Error(t, err)
	assert.Equal(t, 1, strings.Count(strings.Join(st.Stderr, "\n"), "database is down"))
}

func TestStartExecErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.addProgram("typo", "/usr/bin/pythn3 app.py")
	e.addProgram("nopath", "pythn3-nowhere app.py")
	e.addProgram("shell", "exec pythn3-nowhere app.py", "useshell = true")
	m := e.manager()
	ctx := ctxT(t)

	_, err := m.Do(ctx, ActionStart, "typo")
	assert.Equal(t, exitcode.ProgramFailedToLaunch, exitcode.Of(err))
	assert.Contains(t, err.Error(), "no such file or directory: /usr/bin/pythn3")

	_, err = m.Do(ctx, ActionStart, "nopath")
	assert.Equal(t, exitcode.ProgramFailedToLaunch, exitcode.Of(err))
	assert.Contains(t, err.Error(), "pythn3-nowhere")

	_, err = m.Do(ctx, ActionStart, "shell")
	assert.Equal(t, exitcode.ProgramFailedToLaunch, exitcode.Of(err), "%v", err)
	assert.Contains(t, err.Error(), "127")
}

func TestStartNoMatch(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	e.addProgram("odd", h.CommandLine(), "proctitle_re = ^never-matches-anything$")
	m := e.manager()
	_, err := m.Do(ctxT(t), ActionStart, "odd")
	require.Error(t, err)
	assert.Equal(t, exitcode.GeneralFailure, exitcode.Of(err))
	assert.True(t, errors.Is(err, ErrNoMatch))
	assert.Contains(t, err.Error(), h.Token, "the titles seen are listed")
	assert.Empty(t, h.PIDs(), "what the failed start launched is stopped, so retries cannot pile up")
}

func TestUnwritableDirectories(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmd, _ := uniqueSleep(t) // not "sleep 1": another one on the machine would be adopted
	e.addProgram("nodir", cmd)
	e.programs[0] = strings.Replace(e.programs[0], "stdout = "+e.path("nodir.log"), "stdout = "+e.path("missing/nodir.log"), 1)
	m := e.manager()
	_, err := m.Do(ctxT(t), ActionStart, "nodir")
	assert.Equal(t, exitcode.InsufficientPermissions, exitcode.Of(err))
	assert.Contains(t, err.Error(), e.path("missing"))
}

func TestStalePidfiles(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	e.addProgram("web", h.CommandLine(), "scan_for_process = false")
	m := e.manager()
	ctx := ctxT(t)

	// Garbage.
	require.NoError(t, os.WriteFile(e.path("web.pid"), []byte("hello\n"), 0o600))
	st, err := m.Do(ctx, ActionStatus, "web")
	require.NoError(t, err)
	assert.False(t, st.Running)
	assert.Contains(t, strings.Join(st.Warnings, "\n"), "does not hold a pid")
	_, err = os.Stat(e.path("web.pid"))
	assert.True(t, os.IsNotExist(err), "stale pidfile removed (autopid)")

	// A dead pid.
	require.NoError(t, os.WriteFile(e.path("web.pid"), []byte("999999999\n"), 0o600))
	st, _ = m.Do(ctx, ActionStatus, "web")
	assert.Contains(t, strings.Join(st.Warnings, "\n"), "no such process")

	// An unrelated process of ours: stale, never signalled by stop.
	other := testproc.New(t, "sleep")
	pid := other.Detach(t)
	require.NoError(t, os.WriteFile(e.path("web.pid"), []byte(strconv.Itoa(pid)+"\n"), 0o600))
	st, err = m.Do(ctx, ActionStop, "web")
	require.NoError(t, err)
	assert.Equal(t, "not running", st.Message)
	assert.Contains(t, strings.Join(st.Warnings, "\n"), "does not match proctitle_re")
	assert.True(t, pidAlive(pid), "an unrelated process is never signalled")
}

func TestStopIgnoringTerm(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "ignore-term")
	e.addProgram("stubborn", h.CommandLine(), "term_to_kill_seconds = 0.3")
	m := e.manager()
	ctx := ctxT(t)
	st, err := m.Do(ctx, ActionStart, "stubborn")
	require.NoError(t, err)
	pid := st.Process.PID
	// Under load the helper may not have ignored SIGTERM yet: it says when.
	h.WaitReady(t, 30*time.Second)
	st, err = m.Do(ctx, ActionStop, "stubborn")
	require.NoError(t, err)
	assert.Contains(t, st.Message, "SIGKILL")
	assert.False(t, pidAlive(pid))
}

func TestConcurrentStartsStartOnce(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	e.addProgram("once", h.CommandLine())
	cfg := e.config()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, _ := NewManager(cfg, Options{})
			_, errs[i] = m.Do(ctxT(t), ActionStart, "once")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, h.PIDs(), 1, "exactly one process")
}

func TestStartAllParallelAndEnv(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var hs []*testproc.Helper
	for i := 0; i < 4; i++ {
		h := testproc.New(t, "sleep")
		hs = append(hs, h)
		e.addProgram(fmt.Sprintf("p%d", i), h.CommandLine(), "[[Env]]", fmt.Sprintf("ONLY_P%d = yes", i))
	}
	e.addProgram("off", "sleep 1000", "enabled = false")
	m := e.manager()
	res := m.DoAll(ctxT(t), ActionStart, nil, true)
	require.Len(t, res, 4, "disabled programs are skipped")
	for i, r := range res {
		require.NoError(t, r.Err)
		assert.Equal(t, fmt.Sprintf("p%d", i), r.Program, "name order")
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", r.Status.Process.PID))
		require.NoError(t, err)
		for j := 0; j < 4; j++ {
			has := strings.Contains(string(env), fmt.Sprintf("ONLY_P%d=yes", j))
			assert.Equal(t, i == j, has, "environment of p%d must hold only its own [[Env]]", i)
		}
	}
	all := m.DoAll(ctxT(t), ActionStatus, nil, false)
	require.Len(t, all, 5)
	assert.Equal(t, exitcode.GeneralFailure, resultCode(all[0]), "off is not running")
	assert.True(t, all[0].Status.Disabled)
	for _, r := range m.DoAll(ctxT(t), ActionStop, nil, true) {
		require.NoError(t, r.Err)
	}
	for _, h := range hs {
		assert.Empty(t, h.PIDs())
	}
}

func TestUndefinedAndDisabled(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.addProgram("webserver", "sleep 1000")
	e.addProgram("off", "sleep 1000", "enabled = false")
	m := e.manager()
	_, err := m.Do(ctxT(t), ActionStart, "websrver")
	assert.Equal(t, exitcode.ProgramUndefined, exitcode.Of(err))
	assert.Contains(t, err.Error(), `did you mean "webserver"`)
	_, err = m.Do(ctxT(t), ActionStart, "off")
	assert.Equal(t, exitcode.ProgramDisabled, exitcode.Of(err))
	_, err = m.Do(ctxT(t), "jump", "webserver")
	assert.Equal(t, exitcode.InvalidAction, exitcode.Of(err))
	assert.Equal(t, exitcode.InvalidAction, resultCode(m.DoAll(ctxT(t), "jump", nil, false)[0]))
}

func TestDefaultDispositionsWhenCallerIgnoresTerm(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	e.addProgram("sig", h.CommandLine())
	e.write()
	// Run a launch from a process that ignores every signal it can: the
	// test binary acting as a tiny client (see TestHelperStartClient). The
	// job-control signals (CONT, TSTP, TTIN, TTOU) used to stay ignored in
	// the program: Go's runtime keeps them ignored unless asked for them.
	var sigs []string
	for sig := 1; sig <= 31; sig++ {
		if sig != int(syscall.SIGKILL) && sig != int(syscall.SIGSTOP) {
			sigs = append(sigs, strconv.Itoa(sig))
		}
	}
	sh := exec.Command("/bin/sh", "-c", `trap "" `+strings.Join(sigs, " ")+`; exec "$0" -test.run='^TestHelperStartClient$'`, os.Args[0])
	sh.Env = append(os.Environ(), "USRSVC_TEST_CLIENT="+e.cfgPath)
	out, err := sh.CombinedOutput()
	require.NoError(t, err, string(out))
	pids := h.PIDs()
	require.Len(t, pids, 1)
	ign, err := strconv.ParseUint(procStatusField(t, pids[0], "SigIgn"), 16, 64)
	require.NoError(t, err)
	for sig := syscall.Signal(1); sig <= 31; sig++ {
		assert.Zero(t, ign&(1<<(uint(sig)-1)), "signal %d (%v) ignored in the program", int(sig), sig)
	}
}

// TestHelperStartClient is run as a subprocess by tests that need a caller
// with particular dispositions.
func TestHelperStartClient(t *testing.T) {
	path := os.Getenv("USRSVC_TEST_CLIENT")
	if path == "" {
		t.Skip("helper for other tests")
	}
	cfg, err := LoadConfig(path)
	require.NoError(t, err)
	m, err := NewManager(cfg, Options{})
	require.NoError(t, err)
	for _, r := range m.DoAll(ctxT(t), ActionStart, nil, false) {
		require.NoError(t, r.Err)
	}
}

// A pidfile naming another user's process is stale: never adopted, never
// signalled (needs root to start a process as uid 65534).
func TestPidfileOfAnotherUser(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root to start a process as another user")
	}
	cmdline, token := uniqueSleep(t)
	other := exec.Command("/bin/sleep", token)
	other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	require.NoError(t, other.Start())
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })

	e := newTestEnv(t)
	e.addProgram("web", cmdline, "scan_for_process = false")
	m := e.manager()
	require.NoError(t, os.WriteFile(e.path("web.pid"), []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o600))
	st, err := m.Do(ctxT(t), ActionStop, "web")
	require.NoError(t, err)
	assert.Equal(t, "not running", st.Message)
	assert.Contains(t, strings.Join(st.Warnings, "\n"), "belongs to another user")
	assert.True(t, pidAlive(other.Process.Pid), "another user's process is never signalled")

	// Even with scanning, it is never adopted.
	e2 := newTestEnv(t)
	e2.addProgram("web", cmdline)
	st, err = e2.manager().Do(ctxT(t), ActionStatus, "web")
	require.NoError(t, err)
	assert.False(t, st.Running)
}

// A lock held too long by another operation is code 11 (TRY_AGAIN).
func TestLockHeldIsTryAgain(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmdline, _ := uniqueSleep(t)
	e.addProgram("web", cmdline)
	m := e.manager(func(o *Options) { o.LockTimeout = 200 * time.Millisecond })
	lock, err := m.state().Lock(ctxT(t), "web", time.Second)
	require.NoError(t, err)
	defer lock.Close()
	_, err = m.Do(ctxT(t), ActionStart, "web")
	assert.Equal(t, exitcode.TryAgain, exitcode.Of(err), "%v", err)
	assert.Contains(t, err.Error(), "try again")
	lock.Close()
	_, err = m.Do(ctxT(t), ActionStart, "web")
	require.NoError(t, err)
	_, err = m.Do(ctxT(t), ActionStop, "web")
	require.NoError(t, err)
}

// stderr to its own file: the failure reports that file's new lines.
func TestSeparateStderrFile(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "exit-after", "50ms", "5", "--stderr=to the error log")
	e.addProgram("crash", h.CommandLine(), "stderr = "+e.path("crash.err"), "success_seconds = 2")
	st, err := e.manager().Do(ctxT(t), ActionStart, "crash")
	require.Error(t, err)
	assert.Equal(t, []string{"to the error log"}, st.Stderr)
	errLog, _ := os.ReadFile(e.path("crash.err"))
	assert.Contains(t, string(errLog), "to the error log")
	outLog, _ := os.ReadFile(e.path("crash.log"))
	assert.NotContains(t, string(outLog), "to the error log")
	fi, err := os.Stat(e.path("crash.err"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "files the tools create are 0600")
}

// The longest program name the config accepts fits every file the state
// directory keeps for it: a manual start and stop (lock, manual record,
// and their atomic temp files) work; one character more is a config error.
func TestLongestProgramName(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	name := strings.Repeat("x", maxProgramName)
	e.addProgram(name, h.CommandLine())
	m := e.manager()
	st, err := m.Do(ctxT(t), ActionStart, name)
	require.NoError(t, err)
	require.True(t, st.Running)
	_, err = m.Do(ctxT(t), ActionStop, name)
	require.NoError(t, err)
	stopped, _, err := m.state().StoppedByHand(name)
	require.NoError(t, err)
	assert.True(t, stopped)

	e2 := newTestEnv(t)
	e2.addProgram(name+"x", h.CommandLine())
	_, err = LoadConfig(e2.write())
	assert.Equal(t, exitcode.InvalidConfig, exitcode.Of(err))
	assert.ErrorContains(t, err, fmt.Sprintf("program name is %d characters long; at most %d fit", maxProgramName+1, maxProgramName))
}

// A program may ask for its own status (usrsvcweb run as a [Program:web]
// under usrsvcd): when its pidfile names the calling process, that is the
// program, and the pidfile stays. A scan never adopts the caller, though:
// a usrsvc whose command line matches a broad proctitle_re is not the
// program.
func TestStatusOfItself(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	// Our own title, whole: no helper process of another test matches.
	title := strings.Join(os.Args, " ")
	require.NotContains(t, title, "'")
	e.addProgram("me", "/bin/sleep 1", "proctitle_re = '^"+regexp.QuoteMeta(title)+"$'")
	m := e.manager()
	ctx := ctxT(t)

	st, err := m.Do(ctx, ActionStatus, "me")
	require.NoError(t, err)
	assert.False(t, st.Running, "a scan does not adopt the caller")
	_, err = os.Stat(e.path("me.pid"))
	assert.True(t, os.IsNotExist(err), "nothing adopted, no pidfile written")

	require.NoError(t, os.WriteFile(e.path("me.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600))
	st, err = m.Do(ctx, ActionStatus, "me")
	require.NoError(t, err)
	require.True(t, st.Running, "the pidfile names the caller, which matches: it is the program (%v)", st.Warnings)
	assert.Equal(t, os.Getpid(), st.Process.PID)
	_, err = os.Stat(e.path("me.pid"))
	assert.NoError(t, err, "its pidfile is not taken for stale")
}

// A cancelled start says so all the way up: errors.Is(err,
// context.Canceled). Cancelled before, nothing is launched; cancelled
// during the success window, the launcher finishes the start by itself and
// records the program.
func TestStartCancelled(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	before, beforeToken := uniqueSleep(t)
	during, duringToken := uniqueSleep(t)
	e.addProgram("before", before)
	e.addProgram("during", during, "success_seconds = 1.5")
	m := e.manager()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := m.Do(ctx, ActionStart, "before")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, testproc.PIDsMatching("sleep "+beforeToken), "nothing launched")

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err = m.Do(ctx, ActionStart, "during")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, ErrFailed)
	waitFor(t, 30*time.Second, func() bool {
		st, err := m.Do(ctxT(t), ActionStatus, "during")
		return err == nil && st.Running && strings.Contains(st.Process.Title, duringToken)
	}, "the launcher finished the start it was given")
	_, err = os.Stat(e.path("during.pid"))
	assert.NoError(t, err, "and wrote the pidfile")
}

// CheckLauncher: the test binary imports usrsvc, so it answers as a
// launcher; a binary that does not, or none, is an error.
func TestCheckLauncher(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	require.NoError(t, checkLauncher(ctx, ""))
	require.NoError(t, checkLauncher(ctx, os.Args[0]))
	assert.Error(t, checkLauncher(ctx, "/bin/true"), "not a launcher: it exits without answering")
	err := checkLauncher(ctx, filepath.Join(t.TempDir(), "missing"))
	assert.ErrorIs(t, err, ErrLaunch)
}
