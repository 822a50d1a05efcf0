package usrsvc

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/statedir"
)

// The state directory removed under a running loop (rm -r): the loop
// recreates it, takes its lock again and writes its records again, so the
// tools see the daemon, and no second one starts beside it, not even in
// the moment before.
func TestStateDirRemovedIsRecreated(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmd, _ := uniqueSleep(t)
	e.addProgram("web", cmd)
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	started := evs.wait(t, EventStarted, "web", 1)
	sd := m.state()
	waitRecordedRunning(t, m, "web", started[0].PID, "recorded")

	secondRun := func() error {
		// Bounded: without the fix it would supervise beside the first.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return e.manager().Run(ctx)
	}
	require.NoError(t, os.RemoveAll(string(sd)))
	// At once, before the loop could recreate anything: a second Run finds
	// the lock the first one still holds.
	err := secondRun()
	assert.ErrorIs(t, err, ErrDaemonRunning, "a second Run supervised beside the first")

	waitFor(t, 10*time.Second, func() bool {
		rec, _ := sd.Record("web")
		return sd.DaemonRunning() && rec != nil && rec.PID == started[0].PID
	}, "the state directory recreated, its lock held and the records written again")
	fi, err := os.Stat(string(sd))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	assert.ErrorIs(t, secondRun(), ErrDaemonRunning, "a second Run is refused through the new lock")

	// Supervision goes on, and manual operations are seen at once again
	// (the new directory is watched).
	require.NoError(t, syscall.Kill(started[0].PID, syscall.SIGKILL))
	again := evs.wait(t, EventStarted, "web", 2)
	_, err = e.manager().Do(ctxT(t), ActionStop, "web")
	require.NoError(t, err)
	waitFor(t, 10*time.Second, func() bool { // the pass would take 30 s
		rec, _ := sd.Record("web")
		return rec != nil && State(rec.State) == StateStoppedByHand
	}, "the manual stop seen through the new directory's watch")
	assert.False(t, pidAlive(again[1].PID))
}

// When another daemon has taken the new state directory's lock, the loop
// whose directory was removed gives way: Run returns ErrDaemonRunning and
// the programs keep running.
func TestStateDirTakenOverEndsRun(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmd, _ := uniqueSleep(t)
	e.addProgram("web", cmd)
	var evs events
	m := e.manager(recorder(&evs))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	pid := evs.wait(t, EventStarted, "web", 1)[0].PID
	sd := m.state()

	// Another daemon's directory, its lock held, swapped in at once.
	other := string(sd) + ".other"
	require.NoError(t, os.Mkdir(other, 0o700))
	lock, err := statedir.LockFile(ctxT(t), filepath.Join(other, statedir.DaemonLock), time.Second)
	require.NoError(t, err)
	defer lock.Close()
	if err := unix.Renameat2(unix.AT_FDCWD, string(sd), unix.AT_FDCWD, other, unix.RENAME_EXCHANGE); err != nil {
		cancel()
		<-done
		t.Skipf("renameat2 RENAME_EXCHANGE: %v", err)
	}
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrDaemonRunning)
		assert.ErrorContains(t, err, "another daemon took its new lock")
	case <-time.After(15 * time.Second):
		t.Fatal("Run goes on beside the daemon that holds the state directory's lock")
	}
	waitLaunchersDone(t, string(sd))
	assert.True(t, pidAlive(pid), "the programs keep running")
}
