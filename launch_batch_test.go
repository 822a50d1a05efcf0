package usrsvc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/launch"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// Programs started at once share launcher processes, and each still has a
// subreaper of its own: fork-and-exit daemons started together each get
// their own daemon recorded, a start in which nothing matches stops its own
// tree and nothing else, and no program's parent is a launcher once its
// start has returned. Not parallel: it counts the launchers this test
// process starts.
func TestParallelStartsShareLaunchers(t *testing.T) {
	e := newTestEnv(t)
	const n = 8
	var daemons []*testproc.Helper
	for i := range n {
		h := testproc.New(t, "fork-and-exit")
		daemons = append(daemons, h)
		e.addProgram(fmt.Sprintf("daemon%d", i), h.CommandLine(),
			"proctitle_re = "+h.Token+".* sleep|sleep .*"+h.Token, "success_seconds = 2")
		cmdline, _ := uniqueSleep(t)
		e.addProgram(fmt.Sprintf("plain%d", i), cmdline, "success_seconds = 2")
	}
	stranger, token := uniqueSleep(t)
	e.addProgram("stranger", stranger, "proctitle_re = ^nothing-like-it$", "success_seconds = 2")
	m := e.manager()

	before := launch.LaunchersStarted()
	results := m.DoAll(ctxT(t), ActionStart, nil, true)
	launchers := launch.LaunchersStarted() - before
	require.Len(t, results, 2*n+1)
	for _, r := range results {
		if r.Program == "stranger" {
			assert.ErrorIs(t, r.Err, ErrNoMatch)
			assert.Empty(t, testproc.PIDsMatching("sleep "+token), "its tree was stopped")
			continue
		}
		require.NoError(t, r.Err, r.Program)
		require.True(t, r.Status.Running, r.Program)
		pid := r.Status.Process.PID
		ppid, _ := strconv.Atoi(procStatFields(t, pid)[1])
		parent, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ppid))
		assert.False(t, strings.HasPrefix(string(parent), "usrsvc-launcher"),
			"%s: its parent [%d] is a launcher after its start returned", r.Program, ppid)
		if i, ok := strings.CutPrefix(r.Program, "daemon"); ok {
			k, _ := strconv.Atoi(i)
			assert.Equal(t, daemons[k].PIDs(), []int{pid}, "%s recorded its own daemon", r.Program)
		}
	}
	// Starts join a launcher within its batch window: a handful of
	// launchers, not one per start, even when a loaded machine spreads the
	// goroutines' starts over several windows.
	assert.LessOrEqual(t, launchers, int64(6), "%d starts at once", 2*n+1)
	assert.Positive(t, launchers)
}
