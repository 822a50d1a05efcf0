package usrsvc

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// ready = tcp: the start succeeds when the program listens (after 2 s
// here), not after success_seconds.
func TestReadyTCP(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	port := freePort(t)
	h := testproc.New(t, "http-server", "--listen=127.0.0.1:"+port, "--after=2s")
	e.addProgram("web", h.CommandLine(), "ready = tcp:127.0.0.1:"+port, "success_seconds = 30")
	m := e.manager()
	t0 := time.Now()
	st, err := m.Do(ctxT(t), ActionStart, "web")
	require.NoError(t, err)
	took := time.Since(t0)
	assert.GreaterOrEqual(t, took, 2*time.Second, "not before it listens")
	assert.Less(t, took, 25*time.Second, "not after success_seconds")
	assert.Contains(t, st.Message, "started (ready after ")
	assert.Equal(t, h.PIDs(), []int{st.Process.PID})
}

// A condition already true when the program starts (its port served by
// another process here) ends the window at once: the caller's verdict may
// reach the launcher before the job's window opens.
func TestReadyAlreadyTrue(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	h := testproc.New(t, "sleep")
	e.addProgram("early", h.CommandLine(), "ready = tcp:"+ln.Addr().String(), "ready_timeout = 40", "success_seconds = 40")
	t0 := time.Now()
	st, err := e.manager().Do(ctxT(t), ActionStart, "early")
	require.NoError(t, err)
	assert.Less(t, time.Since(t0), 30*time.Second, "the window ended at once, not at ready_timeout")
	assert.Contains(t, st.Message, "ready after")
	assert.Equal(t, h.PIDs(), []int{st.Process.PID})
}

func TestReadyLogAndNotify(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	say := testproc.New(t, "say", "--after=500ms", "--line=server listening on :80")
	e.addProgram("logger", say.CommandLine(), "ready = log:listening on :[0-9]+$", "success_seconds = 30")
	notify := testproc.New(t, "notify", "--after=300ms", "--status=warming done")
	e.addProgram("notifier", notify.CommandLine(), "ready = notify", "success_seconds = 30")
	m := e.manager()
	for _, name := range []string{"logger", "notifier"} {
		t0 := time.Now()
		st, err := m.Do(ctxT(t), ActionStart, name)
		require.NoError(t, err, name)
		assert.Less(t, time.Since(t0), 25*time.Second, name)
		assert.Contains(t, st.Message, "ready after", name)
	}
	st, err := m.Do(ctxT(t), ActionStatus, "notifier")
	require.NoError(t, err)
	assert.True(t, st.Running)
}

// Not ready within ready_timeout: the start fails with its own message
// and code, and nothing it launched is left running.
func TestReadyTimeoutLeavesNothing(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	port := freePort(t)
	h := testproc.New(t, "spawn-child")
	e.addProgram("slow", h.CommandLine(), "ready = tcp:127.0.0.1:"+port, "ready_timeout = 1")
	m := e.manager()
	_, err := m.Do(ctxT(t), ActionStart, "slow")
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNotReady)
	assert.Equal(t, exitcode.GeneralFailure, exitcode.Of(err))
	assert.True(t, strings.Contains(err.Error(), "not ready after 1s (ready = tcp:127.0.0.1:"+port+")"), err.Error())
	waitFor(t, 15*time.Second, func() bool { return len(h.PIDs()) == 0 }, "the program and its child stopped")
}
