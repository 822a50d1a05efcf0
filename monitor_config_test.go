package usrsvc

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// The monitor tests run helper processes (internal/testproc). They hook in
// with an init function rather than a TestMain, so that they coexist with the
// package's TestMain wherever it is defined: in a helper process, init runs
// the helper's behaviour and exits before any TestMain; otherwise it returns
// at once, and calling testproc.Main again from a TestMain is harmless.
func init() { testproc.Main() }

// liveProcess describes the running process pid as the Manager would.
func liveProcess(t testing.TB, pid int) Process {
	t.Helper()
	pp, err := proc.Default().Process(pid)
	require.NoError(t, err)
	return Process{PID: pid, StartTicks: pp.StartTicks, Started: pp.Started, Title: pp.Title, Args: pp.Args}
}
