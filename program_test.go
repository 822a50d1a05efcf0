package usrsvc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// stopWithin runs a stop by hand (another Manager: usrsvc) bounded by d.
func stopWithin(t *testing.T, e *testEnv, name string, d time.Duration) (*Status, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	t0 := time.Now()
	st, err := e.manager().Do(ctx, ActionStop, name)
	return st, time.Since(t0), err
}

// A stop by hand cancels a start in its success window (an hour here)
// instead of waiting for its end: the starter's, or after the starter
// gave up waiting (Ctrl-C), its launcher's.
func TestStopCancelsStartInWindow(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmd, token := uniqueSleep(t)
	e.addProgram("slow", cmd, "success_seconds = 3600")
	sd := e.manager().state()

	for _, abandoned := range []bool{false, true} {
		starter := e.manager()
		ctx, cancel := context.WithCancel(context.Background())
		type result struct {
			st  *Status
			err error
		}
		done := make(chan result, 1)
		go func() {
			st, err := starter.Do(ctx, ActionStart, "slow")
			done <- result{st, err}
		}()
		waitFor(t, 10*time.Second, func() bool { return len(testproc.PIDsMatching("sleep "+token)) == 1 }, "the program in its window")
		pid := testproc.PIDsMatching("sleep " + token)[0]
		marker, err := sd.Starting("slow")
		require.NoError(t, err)
		require.True(t, marker, "the start's marker")
		if abandoned {
			cancel() // Ctrl-C: the launcher goes on with the window, holding the lock
			r := <-done
			require.ErrorIs(t, r.err, context.Canceled)
		}

		st, took, err := stopWithin(t, e, "slow", 20*time.Second)
		require.NoError(t, err, "the stop does not wait for the hour-long window")
		t.Logf("abandoned starter %v: stop took %v", abandoned, took.Round(time.Millisecond))
		assert.True(t, st.WasRunning)
		assert.Contains(t, st.Message, fmt.Sprintf("stopped during its start (pid %d", pid))
		assert.False(t, pidAlive(pid))
		assert.Empty(t, testproc.PIDsMatching("sleep "+token))
		if !abandoned {
			r := <-done
			require.Error(t, r.err)
			assert.Equal(t, exitcode.GeneralFailure, exitcode.Of(r.err))
			assert.ErrorContains(t, r.err, "cancelled: it was stopped by hand during its success window")
			assert.Equal(t, StateStoppedByHand, r.st.State)
		}
		cancel()
		marker, _ = sd.Starting("slow")
		assert.False(t, marker, "no marker left once the lock is free")
		man, _ := sd.Manual("slow")
		assert.Equal(t, "stop", man.Action)
		_, err = os.Stat(e.path("slow.pid"))
		assert.True(t, os.IsNotExist(err), "no pidfile")
	}
}

// usrsvcd's own start in its window is cancelled the same way, and the
// program stays stopped by hand: no failure, no backoff.
func TestStopCancelsDaemonStart(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmd, token := uniqueSleep(t)
	e.addProgram("slow", cmd, "success_seconds = 3600")
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	waitFor(t, 10*time.Second, func() bool { return len(testproc.PIDsMatching("sleep "+token)) == 1 }, "the daemon's start in its window")
	st, _, err := stopWithin(t, e, "slow", 20*time.Second)
	require.NoError(t, err)
	assert.True(t, st.WasRunning)
	waitSettled(t, m, "slow", StateStoppedByHand)
	assert.Empty(t, evs.list(EventStartFailed, "slow"))
	assert.Empty(t, evs.list(EventRestarting, "slow"))
	assert.Empty(t, testproc.PIDsMatching("sleep "+token))
}
