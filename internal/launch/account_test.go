package launch

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// asAccount runs the calling test's body as an ordinary account: in this
// process when it is not root, else in a copy of this test binary run as
// uid and gid 65534 (root is not held to RLIMIT_NPROC, hard limits or
// directory permissions). It returns true in the process that must run
// the body.
func asAccount(t *testing.T) bool {
	const marker = "LAUNCH_TEST_AS_ACCOUNT"
	if os.Getenv(marker) == t.Name() || os.Getuid() != 0 {
		return true
	}
	// A copy of the binary where uid 65534 can run it.
	dir, err := os.MkdirTemp("", "launch-account")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "launch.test")
	src, err := os.Open(os.Args[0])
	require.NoError(t, err)
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	src.Close()
	require.NoError(t, dst.Close())
	work := filepath.Join(dir, "work")
	require.NoError(t, os.Mkdir(work, 0o777))
	require.NoError(t, os.Chmod(work, 0o777))
	cmd := exec.Command(bin, "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), marker+"="+t.Name(), "TMPDIR="+work, "LAUNCH_TEST_ROOT_DIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "as uid 65534:\n%s", out)
	require.Contains(t, string(out), "--- PASS: "+t.Name(), string(out))
	return false
}

// Out of processes (RLIMIT_NPROC): a fork of the intermediate that fails
// with EAGAIN is a resource error of stage fork (the caller words it as
// such, code 11), never an exec error; so is the launcher's own start.
// Tested as uid 65534 when run as root, which RLIMIT_NPROC does not hold.
func TestOutOfProcesses(t *testing.T) {
	if !asAccount(t) {
		return
	}
	launcherPid = uintptr(os.Getpid())
	dir := t.TempDir()
	job := testJob(dir, sleepToken())
	// Threads for the runtime to reuse while no new one can be made.
	done := make(chan struct{})
	for range 8 {
		go func() {
			runtime.LockOSThread()
			<-done
			runtime.UnlockOSThread()
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(done)
	var old unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NPROC, &old))
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: 1, Max: old.Max}))
	r := job.run(nil, nil)
	_, spawnErr := Spawn(ctxMinute(t), "/proc/self/exe", job, nil)
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NPROC, &old))

	assert.Equal(t, Failed, r.Outcome, "%+v", r)
	assert.Equal(t, StageFork, r.Stage)
	assert.Equal(t, syscall.EAGAIN, r.Errno)
	assert.Contains(t, r.Err, "forking the program's intermediate process")
	require.Error(t, spawnErr)
	assert.ErrorIs(t, spawnErr, syscall.EAGAIN)
	assert.ErrorIs(t, spawnErr, ErrStart)
}

// A working directory the account cannot enter is told as that, not as an
// exec error naming the executable; a hard limit above the account's is
// refused naming the limit.
func TestSetUpRefusedToAnAccount(t *testing.T) {
	if !asAccount(t) {
		return
	}
	launcherPid = uintptr(os.Getpid())
	dir := t.TempDir()
	closed := filepath.Join(dir, "closed")
	require.NoError(t, os.Mkdir(closed, 0o700))
	require.NoError(t, os.Chmod(closed, 0o000))
	t.Cleanup(func() { os.Chmod(closed, 0o700) })
	job := testJob(dir, sleepToken())
	job.Dir = closed
	r := job.run(nil, nil)
	assert.Equal(t, SetupFailed, r.Outcome, "%+v", r)
	assert.Equal(t, StageChdir, r.Stage)
	assert.Equal(t, syscall.EACCES, r.Errno)
	assert.Equal(t, "cannot enter directory "+closed+": permission denied", r.Err)

	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Max == ^uint64(0) {
		t.Skip("no hard limit on open files to exceed")
	}
	job = testJob(dir, sleepToken())
	job.Limits = []Limit{{Resource: unix.RLIMIT_NOFILE, Soft: lim.Max + 1, Hard: lim.Max + 1}}
	r = job.run(nil, nil)
	assert.Equal(t, SetupFailed, r.Outcome, "%+v", r)
	assert.Equal(t, StageLimit, r.Stage)
	assert.Equal(t, syscall.EPERM, r.Errno)
	assert.Contains(t, r.Err, "cannot set RLIMIT_NOFILE")
	assert.Contains(t, r.Err, "above the hard limit")
}

// A launcher that fails tells why: what it wrote on its stderr reaches the
// caller's error, with how it ended.
func TestLauncherFailureReachesTheCaller(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "launcher")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\necho 'boom: cannot serve' >&2\nexit 3\n"), 0o755))
	_, err := Spawn(ctxMinute(t), script, &Job{Probe: true}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exit status 3")
	assert.Contains(t, err.Error(), "boom: cannot serve")
	assert.Contains(t, err.Error(), "a launcher is a binary that imports package usrsvc")

	// The Go runtime's failure to start a thread is out of processes.
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n"+
		"echo 'runtime: failed to create new OS thread (have 2 already; errno=11)' >&2\nexit 2\n"), 0o755))
	_, err = Spawn(ctxMinute(t), script, &Job{Probe: true}, nil)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EAGAIN), "%v", err)
	assert.True(t, strings.Contains(err.Error(), "errno=11"), "%v", err)
}
