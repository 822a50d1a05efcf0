package usrsvc

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/launch"
)

// What the launcher tells is worded as it is: out of processes is a
// resource error with its fix (code 11), a directory that cannot be
// entered names the directory (code 137), a program gone when a late exec
// was checked says so without a contradiction, and a launcher that could
// not start for lack of processes is a resource error too.
func TestLaunchErrorWording(t *testing.T) {
	job := &launch.Job{Path: "/usr/bin/sleep", Window: 2 * time.Millisecond}
	e := launchFailure(&launch.Result{Outcome: launch.Failed, Stage: launch.StageFork, Errno: syscall.EAGAIN,
		Err: "forking the program's intermediate process: resource temporarily unavailable"}, job)
	assert.ErrorIs(t, e, ErrResource)
	assert.Equal(t, exitcode.TryAgain, exitcode.Of(e))
	assert.Contains(t, e.message, "ulimit -u")
	assert.NotContains(t, e.message, "exec")

	e = launchFailure(&launch.Result{Outcome: launch.SetupFailed, Stage: launch.StageChdir, Errno: syscall.EACCES,
		Err: "cannot enter directory /x: permission denied"}, job)
	assert.ErrorIs(t, e, ErrLaunch)
	assert.Equal(t, "cannot enter directory /x: permission denied", e.message)

	ws := syscall.WaitStatus(0)
	e = launchFailure(&launch.Result{Outcome: launch.Exited, Wait: &ws, Elapsed: 6 * time.Millisecond}, job)
	assert.ErrorIs(t, e, ErrExited)
	assert.Equal(t, "exited with status 0 6ms after its launch, when success_seconds (2ms) ended", e.message)

	e = launchFailure(&launch.Result{Outcome: launch.ExecFailed, Stage: launch.StageExec, Errno: syscall.ENOENT}, job)
	assert.ErrorIs(t, e, ErrLaunch)

	err := spawnError(fmt.Errorf("%w x: %w", launch.ErrStart, syscall.EAGAIN))
	assert.True(t, errors.Is(err, ErrResource), "%v", err)
	assert.Contains(t, err.Error(), "ulimit -u")
}
