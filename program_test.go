package usrsvc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// readOnlyDir returns a directory and a function that makes it read-only
// for this process: chmod for an ordinary user; for root (whom no mode
// stops), a tmpfs remounted read-only.
func readOnlyDir(t *testing.T) (dir string, makeReadOnly func()) {
	if os.Geteuid() != 0 {
		dir = t.TempDir()
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		return dir, func() { require.NoError(t, os.Chmod(dir, 0o500)) }
	}
	dir = testproc.Tmpfs(t, 1<<20)
	return dir, func() {
		require.NoError(t, unix.Mount("tmpfs", dir, "tmpfs", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""))
	}
}

// usrsvc restart checks, before it stops the program, everything its start
// checks before launching: when a check fails the program keeps running
// and the error says so (it used to be stopped, then not started: down,
// with code 136 or 137).
func TestRestartRefusedBeforeTheStop(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		code  exitcode.Code
		setup func(t *testing.T, e *testEnv, token string) (command string, extra []string, breakIt func())
	}{
		{"pidfile directory read-only", exitcode.InsufficientPermissions,
			func(t *testing.T, e *testEnv, token string) (string, []string, func()) {
				dir, readOnly := readOnlyDir(t)
				return "/bin/sleep " + token, []string{"pidfile = " + filepath.Join(dir, "app.pid")}, readOnly
			}},
		{"stdout directory renamed away", exitcode.InsufficientPermissions,
			func(t *testing.T, e *testEnv, token string) (string, []string, func()) {
				logs := e.path("logs")
				require.NoError(t, os.Mkdir(logs, 0o700))
				return "/bin/sleep " + token, []string{"stdout = " + filepath.Join(logs, "app.log")},
					func() { require.NoError(t, os.Rename(logs, logs+".old")) }
			}},
		{"executable moved", exitcode.ProgramFailedToLaunch,
			func(t *testing.T, e *testEnv, token string) (string, []string, func()) {
				bin := e.path("bin")
				require.NoError(t, os.Mkdir(bin, 0o700))
				data, err := os.ReadFile("/bin/sleep")
				require.NoError(t, err)
				exe := filepath.Join(bin, "appsleep")
				require.NoError(t, os.WriteFile(exe, data, 0o700))
				return exe + " " + token, nil, func() { require.NoError(t, os.Rename(exe, exe+".old")) }
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			_, token := uniqueSleep(t) // a token, killed at cleanup
			command, extra, breakIt := c.setup(t, e, token)
			e.addProgram("app", command)
			for _, x := range extra {
				k, _, _ := strings.Cut(x, " = ")
				e.programs[0] = strings.Replace(e.programs[0], k+" = "+e.path("app."+map[string]string{"pidfile": "pid", "stdout": "log"}[k]), x, 1)
			}
			m := e.manager()
			st, err := m.Do(ctxT(t), ActionStart, "app")
			require.NoError(t, err)
			pid := st.Process.PID
			breakIt()

			st, err = m.Do(ctxT(t), ActionRestart, "app")
			require.Error(t, err)
			assert.Equal(t, c.code, exitcode.Of(err), "%v", err)
			assert.Contains(t, err.Error(), "not restarted: ")
			assert.Contains(t, err.Error(), fmt.Sprintf("; app keeps running (pid %d)", pid))
			require.True(t, st.Running, "the status says it runs")
			assert.Equal(t, pid, st.Process.PID)
			assert.True(t, pidAlive(pid), "the running program is left alone")
			assert.Equal(t, []int{pid}, testproc.PIDsMatching("sleep "+token))
			man, _ := m.state().Manual("app")
			assert.Equal(t, "start", man.Action, "nothing recorded as a restart")
		})
	}
}
