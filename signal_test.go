package usrsvc

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestSignal(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmdline, _ := uniqueSleep(t)
	e.addProgram("s", cmdline)
	m := e.manager()
	ctx := ctxT(t)

	_, err := m.Signal(ctx, "s", syscall.SIGTERM)
	assert.ErrorIs(t, err, ErrNotRunning)
	assert.Equal(t, exitcode.GeneralFailure, exitcode.Of(err))
	_, err = m.Signal(ctx, "nope", syscall.SIGTERM)
	assert.ErrorIs(t, err, ErrUndefined)

	st, err := m.Do(ctx, ActionStart, "s")
	require.NoError(t, err)
	pid := st.Process.PID
	st, err = m.Signal(ctx, "s", syscall.SIGTERM)
	require.NoError(t, err)
	assert.Equal(t, pid, st.Process.PID)
	waitFor(t, 10*time.Second, func() bool { return !testproc.Alive(pid) }, "the signalled process exits")
	stopped, _, err := m.state().StoppedByHand("s")
	require.NoError(t, err)
	assert.False(t, stopped, "a signal is not a manual stop")
}
