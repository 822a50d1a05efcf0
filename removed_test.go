package usrsvc

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// A program removed from the configuration by a reread keeps running
// (stop_removed = false, the default) but never vanishes: the reread
// reports it, status all and status NAME list it as removed until it
// ends, a new daemon keeps listing it, and adding it back adopts it.
func TestRemovedProgramStaysVisible(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	webCmd, _ := uniqueSleep(t)
	extraCmd, extraTok := uniqueSleep(t)
	e.addProgram("web", webCmd)
	e.addProgram("extra", extraCmd)
	var evs events
	m := e.manager(recorder(&evs))
	stop := runLoop(t, m)
	started := evs.wait(t, EventStarted, "extra", 1)
	pid := started[0].PID
	evs.wait(t, EventStarted, "web", 1)

	e.programs = e.programs[:1]
	e.write()
	require.NoError(t, m.Reread(ctxT(t)))
	ack, err := m.state().ReloadAck()
	require.NoError(t, err)
	assert.Contains(t, ack.Message, fmt.Sprintf("removed: extra (still running, pid %d)", pid))
	assert.Equal(t, []int{pid}, testproc.PIDsMatching("sleep "+extraTok), "not stopped")

	checkListed := func(m *Manager) {
		t.Helper()
		var found *Result
		results := m.DoAll(ctxT(t), ActionStatus, []string{"all"}, false)
		for i := range results {
			if results[i].Program == "extra" {
				found = &results[i]
			}
		}
		require.NotNil(t, found, "status all lists the removed program that runs")
		assert.NoError(t, found.Err)
		assert.Equal(t, StateRemoved, found.Status.State)
		assert.True(t, found.Status.Running)
		assert.Equal(t, pid, found.Status.Process.PID)
		assert.Equal(t, fmt.Sprintf("removed from the configuration, still running (pid %d)", pid), found.Status.Message)
		st, err := m.Do(ctxT(t), ActionStatus, "extra")
		require.NoError(t, err)
		assert.Equal(t, StateRemoved, st.State)
		for _, r := range m.DoAll(ctxT(t), ActionStatus, nil, false) {
			assert.NotEqual(t, "extra", r.Program, "nil names: the configured programs only")
		}
		_, err = m.Do(ctxT(t), ActionStop, "extra")
		assert.Equal(t, exitcode.ProgramUndefined, exitcode.Of(err))
		assert.ErrorContains(t, err, fmt.Sprintf("still runs (pid %d): stop it with kill %d", pid, pid))
	}
	checkListed(e.manager()) // usrsvc, another Manager
	assert.False(t, inspect(t, m, "extra").known, "no longer supervised")

	// A new daemon keeps listing it.
	stop()
	m2 := e.manager()
	runLoop(t, m2)
	checkListed(m2)

	// Once it ends, it is listed no more.
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitFor(t, 5*time.Second, func() bool { return !pidAlive(pid) }, "extra killed")
	for _, r := range m2.DoAll(ctxT(t), ActionStatus, []string{"all"}, false) {
		assert.NotEqual(t, "extra", r.Program)
	}
	st, err := m2.Do(ctxT(t), ActionStatus, "extra")
	assert.Equal(t, exitcode.ProgramUndefined, exitcode.Of(err))
	assert.False(t, st.Running)
}

// Adding a removed program back adopts its process: no second one.
func TestRemovedProgramAddedBack(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	webCmd, _ := uniqueSleep(t)
	extraCmd, extraTok := uniqueSleep(t)
	e.addProgram("web", webCmd)
	e.addProgram("extra", extraCmd)
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	pid := evs.wait(t, EventStarted, "extra", 1)[0].PID
	all := e.programs
	e.programs = all[:1]
	e.write()
	require.NoError(t, m.Reread(ctxT(t)))
	e.programs = all
	e.write()
	require.NoError(t, m.Reread(ctxT(t)))
	adopted := evs.wait(t, EventAdopted, "extra", 1)
	assert.Equal(t, pid, adopted[0].PID)
	waitRecordedRunning(t, m, "extra", pid, "supervised again")
	assert.Equal(t, []int{pid}, testproc.PIDsMatching("sleep "+extraTok))
	st, err := m.Do(ctxT(t), ActionStatus, "extra")
	require.NoError(t, err)
	assert.NotEqual(t, StateRemoved, st.State)
}

// stop_removed = true: a reread stops the programs it removes, as
// supervisorctl update does, without recording a manual stop.
func TestStopRemoved(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.main += "stop_removed = true\n"
	webCmd, _ := uniqueSleep(t)
	extraCmd, extraTok := uniqueSleep(t)
	e.addProgram("web", webCmd)
	e.addProgram("extra", extraCmd)
	var evs events
	m := e.manager(recorder(&evs))
	require.True(t, m.Config().StopRemoved)
	runLoop(t, m)
	pid := evs.wait(t, EventStarted, "extra", 1)[0].PID
	evs.wait(t, EventStarted, "web", 1)
	e.programs = e.programs[:1]
	e.write()
	require.NoError(t, m.Reread(ctxT(t)))
	ack, _ := m.state().ReloadAck()
	assert.Contains(t, ack.Message, fmt.Sprintf("removed: extra (being stopped: stop_removed = true, pid %d)", pid))
	stopped := evs.wait(t, EventStopped, "extra", 1)
	assert.Equal(t, pid, stopped[0].PID)
	waitFor(t, 10*time.Second, func() bool { return len(testproc.PIDsMatching("sleep "+extraTok)) == 0 }, "extra stopped")
	waitFor(t, 5*time.Second, func() bool { rec, _ := m.state().Record("extra"); return rec == nil }, "its record removed")
	man, _ := m.state().Manual("extra")
	assert.Nil(t, man, "no manual stop recorded")
	assert.Empty(t, evs.list(EventStopped, "web"))
}

// stop_removed is a [Main] boolean, false by default.
func TestStopRemovedKey(t *testing.T) {
	e := newTestEnv(t)
	e.addProgram("web", "/bin/true")
	assert.False(t, e.config().StopRemoved)
	e.main += "stop_removed = maybe\n"
	_, err := LoadConfig(e.write())
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "stop_removed"), err.Error())
}
