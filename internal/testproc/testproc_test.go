package testproc

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
)

func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

const readyTimeout = 20 * time.Second

// gone waits until pid has exited (zombie or reaped).
func gone(t *testing.T, pid int, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		p, err := proc.Default().Stat(pid)
		if errors.Is(err, os.ErrNotExist) || err == nil && p.Zombie() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func TestNew(t *testing.T) {
	t.Parallel()
	h := New(t, "sleep", "x y", "it's")
	assert.Regexp(t, `^tp-sleep-[0-9a-f]{16}$`, h.Token)
	assert.True(t, filepath.IsAbs(h.Argv[0]))
	assert.Equal(t, []string{Marker, "sleep", "--token=" + h.Token, "--ready=" + h.ReadyFile, "--deadline=2m0s", "x y", "it's"}, h.Argv[1:])
	assert.Contains(t, h.ReadyFile, h.Token)
	assert.Equal(t, h.Argv[0]+" testproc sleep --token="+h.Token+" --ready="+h.ReadyFile+
		` --deadline=2m0s 'x y' 'it'\''s'`, h.CommandLine())
	h.WithDeadline(time.Second)
	assert.Equal(t, "--deadline=1s", h.Argv[5])
	assert.Equal(t, "x y", h.Argv[6])
	assert.NotEqual(t, h.Token, New(t, "sleep").Token)
	assert.Equal(t, "''", Quote(""))
	assert.Equal(t, "a/b-c_d.e:f=g,h@i%j+k", Quote("a/b-c_d.e:f=g,h@i%j+k"))
	assert.Equal(t, `'$HOME'`, Quote("$HOME"))
}

func TestSleepStart(t *testing.T) {
	t.Parallel()
	h := New(t, "sleep")
	p := h.Start(t)
	pid := h.WaitReady(t, readyTimeout)
	assert.Equal(t, p.Pid, pid)
	assert.Equal(t, []int{pid}, h.PIDs())
	pr, err := proc.Default().Process(pid)
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), pr.PPID)
	assert.Equal(t, strings.Join(h.Argv, " "), pr.Title)
}

func TestDetach(t *testing.T) {
	t.Parallel()
	h := New(t, "sleep")
	pid := h.Detach(t)
	p, err := proc.Default().Process(pid)
	require.NoError(t, err)
	assert.NotEqual(t, os.Getpid(), p.PPID, "not our child")
	assert.Equal(t, pid, p.SID, "in a session of its own")
	assert.Equal(t, "sleep", p.Args[2])
	assert.Equal(t, []int{pid}, h.PIDs(), "the fork-and-exit helper is gone")

	// Killed by the cleanup of a subtest: nothing is left.
	var token string
	t.Run("cleanup", func(t *testing.T) {
		h := New(t, "ignore-term")
		h.Detach(t)
		c := New(t, "sleep")
		c.Start(t)
		c.WaitReady(t, readyTimeout)
		token = h.Token + "|" + c.Token
		assert.Len(t, h.PIDs(), 1)
	})
	for _, tok := range strings.Split(token, "|") {
		assert.Empty(t, pidsOf(tok), "cleanup left %s running", tok)
	}
}

func TestDetachBehaviour(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "activity")
	h := New(t, "touch-file", file, "20ms")
	pid := h.Detach(t)
	p, err := proc.Default().Process(pid)
	require.NoError(t, err)
	assert.Equal(t, "touch-file", p.Args[2])
	assert.Equal(t, file, p.Args[6])
	assert.FileExists(t, file)
}

func TestForkAndExit(t *testing.T) {
	t.Parallel()
	h := New(t, "fork-and-exit", "--delay=50ms")
	start := time.Now()
	p := h.Start(t)
	st, err := p.Wait()
	require.NoError(t, err)
	assert.True(t, st.Success())
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	pid := h.WaitReady(t, readyTimeout)
	assert.NotEqual(t, p.Pid, pid)
	assert.Equal(t, []int{pid}, h.PIDs())
	d, err := proc.Default().Process(pid)
	require.NoError(t, err)
	assert.Equal(t, "sleep", d.Args[2])
	assert.NotEqual(t, os.Getpid(), d.PPID)
}

func TestExitAfter(t *testing.T) {
	t.Parallel()
	h := New(t, "exit-after", "100ms", "3", "--stderr=first line", "--stderr=second")
	var stderr bytes.Buffer
	h.Stderr = &stderr
	start := time.Now()
	p := h.Start(t)
	pid := h.WaitReady(t, readyTimeout)
	assert.Equal(t, p.Pid, pid)
	st, err := h.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 3, st.ExitCode())
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	assert.Equal(t, "first line\nsecond\n", stderr.String())
}

func TestExitAfterStderrThroughShell(t *testing.T) {
	t.Parallel()
	h := New(t, "exit-after", "10ms", "3", "--stderr=it's a b")
	out, err := exec.Command("/bin/sh", "-c", h.CommandLine()).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 3, ee.ExitCode())
	assert.Equal(t, "it's a b\n", string(out))
	_, ok := h.Ready()
	assert.True(t, ok)
}

func TestCrash(t *testing.T) {
	t.Parallel()
	h := New(t, "crash")
	out, err := exec.Command(h.Argv[0], h.Argv[1:]...).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, string(out), "crash")
	assert.NoFileExists(t, h.ReadyFile)
}

func TestUnknownBehaviour(t *testing.T) {
	t.Parallel()
	h := New(t, "no-such-thing")
	out, err := exec.Command(h.Argv[0], h.Argv[1:]...).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode())
	assert.Contains(t, string(out), "unknown behaviour")
}

func TestIgnoreTerm(t *testing.T) {
	t.Parallel()
	h := New(t, "ignore-term")
	pid := h.Detach(t)
	sig, err := proc.Default().Signals(pid)
	require.NoError(t, err)
	assert.True(t, proc.Has(sig.Ignored, int(syscall.SIGTERM)), "SIGTERM ignored once ready")
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, []int{pid}, h.PIDs(), "survives SIGTERM")
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	assert.True(t, gone(t, pid, 5*time.Second))
	assert.Empty(t, h.PIDs())
}

func TestGrowRSS(t *testing.T) {
	t.Parallel()
	h := New(t, "grow-rss", "64")
	pid := h.Detach(t)
	m, err := proc.Default().Memory(pid)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, m.PrivateKB, int64(64<<10))
	assert.GreaterOrEqual(t, m.RSSKB, m.PrivateKB)
}

func TestTouchFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "sub-missing-is-created")
	h := New(t, "touch-file", file, "20ms", "--stop-after=300ms")
	h.Start(t)
	h.WaitReady(t, readyTimeout)
	first, err := os.Stat(file)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	second, err := os.Stat(file)
	require.NoError(t, err)
	assert.True(t, second.ModTime().After(first.ModTime()), "touched again")
	time.Sleep(400 * time.Millisecond)
	stopped, err := os.Stat(file)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	later, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, stopped.ModTime(), later.ModTime(), "no touch after --stop-after")
	assert.Len(t, h.PIDs(), 1, "still running")
}

func TestSpawnChild(t *testing.T) {
	t.Parallel()
	h := New(t, "spawn-child")
	pid := h.Detach(t)
	pids := h.PIDs()
	require.Len(t, pids, 2)
	s, err := proc.Default().Snapshot(os.Getuid())
	require.NoError(t, err)
	kids := s.Children(pid)
	require.Len(t, kids, 1)
	assert.Contains(t, kids[0].Title, h.Token)
	assert.Equal(t, "sleep", kids[0].Args[2])
	assert.ElementsMatch(t, []int{pid, kids[0].PID}, pids)
}

func TestPrintEnv(t *testing.T) { // not parallel: Setenv
	h := New(t, "print-env", "TESTPROC_X", "TESTPROC_UNSET")
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	defer out.Close()
	h.Stdout = out // an *os.File: written by the helper itself
	t.Setenv("TESTPROC_X", "1")
	h.Start(t)
	h.WaitReady(t, readyTimeout)
	b, err := os.ReadFile(out.Name())
	require.NoError(t, err)
	assert.Equal(t, "TESTPROC_X=1\nTESTPROC_UNSET=<unset>\n", string(b))
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	h := New(t, "sleep").WithDeadline(300 * time.Millisecond)
	pid := h.Detach(t)
	assert.True(t, gone(t, pid, 10*time.Second), "exits by itself at its deadline")
	assert.Empty(t, h.PIDs())
}

func TestKillTokenIgnoresOthers(t *testing.T) {
	t.Parallel()
	a := New(t, "sleep")
	b := New(t, "sleep")
	pa := a.Detach(t)
	pb := b.Detach(t)
	KillToken(a.Token)
	assert.Empty(t, a.PIDs())
	assert.True(t, gone(t, pa, time.Second))
	assert.Equal(t, []int{pb}, b.PIDs())
	KillToken("")
	assert.Equal(t, []int{pb}, b.PIDs())
}

func TestWaitReadyFailsFast(t *testing.T) {
	t.Parallel()
	h := New(t, "crash")
	h.Start(t)
	start := time.Now()
	_, err := h.waitReady(readyTimeout)
	assert.ErrorContains(t, err, "exited before it was ready")
	assert.Less(t, time.Since(start), readyTimeout/2)
}

func TestTmpfsFill(t *testing.T) {
	t.Parallel()
	dir := Tmpfs(t, 256<<10)
	free := Fill(t, dir)
	err := os.WriteFile(filepath.Join(dir, "x"), []byte("hello"), 0o600)
	require.ErrorIs(t, err, syscall.ENOSPC, "the file system is full")
	free()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x"), []byte("hello"), 0o600), "space is back")
}

func TestWithOpenFileLimit(t *testing.T) {
	t.Parallel()
	argv := WithOpenFileLimit(32, "cat", "/proc/self/limits")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Regexp(t, `Max open files\s+32\s+32\s`, string(out))
}
