package launch

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// sleepToken returns a unique duration for sleep (so its title is unique,
// and it ends by itself within minutes).
func sleepToken() string {
	return fmt.Sprintf("%d.%d", 300+os.Getpid()%300, time.Now().UnixNano()%1000000000)
}

// testJob is a job running /bin/sleep TOKEN in dir.
func testJob(dir, token string) *Job {
	return &Job{Path: "/bin/sleep", Argv: []string{"/bin/sleep", token}, Env: []string{"PATH=/bin:/usr/bin"},
		Dir: dir, Stdout: filepath.Join(dir, "out"), Stderr: filepath.Join(dir, "out"),
		Window: 300 * time.Millisecond, TitleRE: "sleep " + token, AutoPid: true, Pidfile: filepath.Join(dir, "pid"),
		TermToKill: time.Second}
}

// killAfter kills pid when the test ends.
func killAfter(t *testing.T, pid int) {
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
}

// The intermediate runs here, in this test process as the launcher: a
// started program is detached, leads its own session, has only its stdio,
// no blocked or ignored signal; an exec error and an exit are told. Not
// parallel: it changes this process's signal dispositions.
func TestIntermediate(t *testing.T) {
	launcherPid = uintptr(os.Getpid())
	// The caller ignores and blocks signals: none of it reaches the program.
	signal.Ignore(syscall.SIGHUP, syscall.SIGUSR2)
	t.Cleanup(func() { signal.Reset(syscall.SIGHUP, syscall.SIGUSR2) })
	dir := t.TempDir()
	token := sleepToken()
	job := testJob(dir, token)
	forked := 0
	r := job.run(func(pid int) { forked = pid }, nil)
	require.Equal(t, Started, r.Outcome, "%+v", r)
	pid := r.Process.PID
	killAfter(t, pid)
	assert.Equal(t, pid, forked, "the program's process was told as forked")
	assert.Empty(t, r.SubreaperErr)
	p, err := proc.Default().Stat(pid)
	require.NoError(t, err)
	assert.NotEqual(t, os.Getpid(), p.PPID, "not our child")
	parent, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PPID))
	assert.NotEqual(t, string(parent), readCmdline(t, os.Getpid()), "its intermediate is gone")
	assert.Equal(t, pid, p.SID, "it leads its own session")
	masks, err := proc.Default().Signals(pid)
	require.NoError(t, err)
	assert.Zero(t, masks.Blocked, "no blocked signal")
	assert.Zero(t, masks.Ignored, "no ignored signal")
	cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	assert.Equal(t, dir, cwd)
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	assert.Len(t, fds, 3, "stdio only")
	data, _ := os.ReadFile(filepath.Join(dir, "pid"))
	assert.Equal(t, strconv.Itoa(pid), strings.TrimSpace(string(data)))

	job = testJob(dir, token)
	job.Path, job.Argv = "/nonexistent/x", []string{"/nonexistent/x"}
	r = job.run(nil, nil)
	assert.Equal(t, ExecFailed, r.Outcome, "%+v", r)
	assert.Equal(t, StageExec, r.Stage)
	assert.Equal(t, syscall.ENOENT, r.Errno)

	job = testJob(dir, token)
	job.Path, job.Argv = "/bin/sh", []string{"/bin/sh", "-c", "echo boom >&2; exit 3"}
	r = job.run(nil, nil)
	require.Equal(t, Exited, r.Outcome, "%+v", r)
	require.NotNil(t, r.Wait)
	assert.Equal(t, 3, r.Wait.ExitStatus())
	assert.Equal(t, []string{"boom"}, r.Stderr)
}

func readCmdline(t *testing.T, pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	require.NoError(t, err)
	return string(data)
}

// A program's umask and resource limits are set in its process before its
// exec; a limit above the hard one fails the start naming the limit, and a
// working directory that cannot be entered is told as such, not as an exec
// error.
func TestProgramSetUp(t *testing.T) {
	launcherPid = uintptr(os.Getpid())
	t.Parallel()
	dir := t.TempDir()
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	require.Greater(t, lim.Max, uint64(64))
	job := testJob(dir, sleepToken())
	job.SetUmask, job.Umask = true, 0o027
	job.Limits = []Limit{{Resource: unix.RLIMIT_NOFILE, Soft: 61, Hard: lim.Max - 1}, {Resource: unix.RLIMIT_CORE, Soft: 0, Hard: 0}}
	r := job.run(nil, nil)
	require.Equal(t, Started, r.Outcome, "%+v", r)
	killAfter(t, r.Process.PID)
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", r.Process.PID))
	require.NoError(t, err)
	assert.Regexp(t, fmt.Sprintf(`Max open files\s+61\s+%d\s`, lim.Max-1), string(limits))
	assert.Regexp(t, `Max core file size\s+0\s+0\s`, string(limits))
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.Process.PID))
	require.NoError(t, err)
	assert.Contains(t, string(status), "Umask:\t0027\n")

	// Without them, the program keeps what its caller has.
	job = testJob(dir, sleepToken())
	r = job.run(nil, nil)
	require.Equal(t, Started, r.Outcome, "%+v", r)
	killAfter(t, r.Process.PID)
	status, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", r.Process.PID))
	require.NoError(t, err)
	mask := unix.Umask(0)
	unix.Umask(mask)
	assert.Contains(t, string(status), fmt.Sprintf("Umask:\t%04o\n", mask))

	// A hard limit above this account's: refused, and said so.
	if lim.Max != ^uint64(0) && os.Getuid() != 0 {
		job = testJob(dir, sleepToken())
		job.Limits = []Limit{{Resource: unix.RLIMIT_NOFILE, Soft: lim.Max + 1, Hard: lim.Max + 1}}
		r = job.run(nil, nil)
		assert.Equal(t, SetupFailed, r.Outcome, "%+v", r)
		assert.Equal(t, StageLimit, r.Stage)
		assert.Equal(t, syscall.EPERM, r.Errno)
		assert.Contains(t, r.Err, "cannot set RLIMIT_NOFILE")
		assert.Contains(t, r.Err, "above the hard limit")
	}
	// A soft limit above the hard one: refused by every account.
	job = testJob(dir, sleepToken())
	job.Limits = []Limit{{Resource: unix.RLIMIT_CORE, Soft: 2000, Hard: 1000}}
	r = job.run(nil, nil)
	assert.Equal(t, SetupFailed, r.Outcome, "%+v", r)
	assert.Equal(t, StageLimit, r.Stage)
	assert.Equal(t, syscall.EINVAL, r.Errno)
	assert.Contains(t, r.Err, "cannot set RLIMIT_CORE to soft 2000, hard 1000")

	// A limit a program may not be given.
	job = testJob(dir, sleepToken())
	job.Limits = []Limit{{Resource: unix.RLIMIT_STACK, Soft: 1 << 20, Hard: 1 << 20}}
	r = job.run(nil, nil)
	assert.Equal(t, Failed, r.Outcome, "%+v", r)
	assert.Contains(t, r.Err, "not one of RLIMIT_NOFILE")

	// A working directory that does not exist.
	job = testJob(dir, sleepToken())
	job.Dir = filepath.Join(dir, "missing")
	r = job.run(nil, nil)
	assert.Equal(t, SetupFailed, r.Outcome, "%+v", r)
	assert.Equal(t, StageChdir, r.Stage)
	assert.Equal(t, syscall.ENOENT, r.Errno)
	assert.Equal(t, "cannot enter directory "+job.Dir+": no such file or directory", r.Err)
}
