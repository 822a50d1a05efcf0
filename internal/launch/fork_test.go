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

	"github.com/usrsvc/usrsvc/internal/proc"
)

// Both ways of starting the intermediate (a CLONE_VM clone on amd64, a
// plain fork elsewhere) run here, in this test process as the launcher:
// a started program is detached, leads its own session, has only its
// stdio, no blocked or ignored signal; an exec error and an exit are told.
// Not parallel: it switches the package's way of cloning.
func TestIntermediateBothWays(t *testing.T) {
	launcherPid = uintptr(os.Getpid())
	// The caller ignores and blocks signals: none of it reaches the program.
	signal.Ignore(syscall.SIGHUP, syscall.SIGUSR2)
	t.Cleanup(func() { signal.Reset(syscall.SIGHUP, syscall.SIGUSR2) })
	ways := map[string]bool{"fork": false}
	if sharedMemoryClone {
		ways["clone"] = true
	}
	for name, shared := range ways {
		t.Run(name, func(t *testing.T) {
			useSharedMemoryClone = shared
			t.Cleanup(func() { useSharedMemoryClone = sharedMemoryClone })
			dir := t.TempDir()
			token := fmt.Sprintf("%d.%d", 1000+os.Getpid()%1000, time.Now().UnixNano()%1000000)
			job := &Job{Path: "/bin/sleep", Argv: []string{"/bin/sleep", token}, Env: []string{"PATH=/bin:/usr/bin"},
				Dir: dir, Stdout: filepath.Join(dir, "out"), Stderr: filepath.Join(dir, "out"),
				Window: 300 * time.Millisecond, TitleRE: "sleep " + token, AutoPid: true, Pidfile: filepath.Join(dir, "pid"),
				TermToKill: time.Second}
			r := job.run()
			require.Equal(t, Started, r.Outcome, "%+v", r)
			pid := r.Process.PID
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
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
			data, _ := os.ReadFile(job.Pidfile)
			assert.Equal(t, strconv.Itoa(pid), strings.TrimSpace(string(data)))

			job.Path, job.Argv = "/nonexistent/x", []string{"/nonexistent/x"}
			r = job.run()
			assert.Equal(t, ExecFailed, r.Outcome, "%+v", r)
			assert.Equal(t, syscall.ENOENT, r.Errno)

			job.Path, job.Argv = "/bin/sh", []string{"/bin/sh", "-c", "echo boom >&2; exit 3"}
			r = job.run()
			require.Equal(t, Exited, r.Outcome, "%+v", r)
			require.NotNil(t, r.Wait)
			assert.Equal(t, 3, r.Wait.ExitStatus())
			assert.Equal(t, []string{"boom"}, r.Stderr)
		})
	}
}

func readCmdline(t *testing.T, pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	require.NoError(t, err)
	return string(data)
}
