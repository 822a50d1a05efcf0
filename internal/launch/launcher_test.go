package launch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// A program still in its exec at the end of the window (no command line
// yet) is read again until it has one, not taken for a stranger.
func TestSettledTreeWaitsForAnExec(t *testing.T) {
	tree := func(title string) *proc.Snapshot {
		return &proc.Snapshot{Procs: map[int]*proc.Process{
			10: {PID: 10, PPID: 1, State: 'S', Title: "usrsvc-launcher"},
			11: {PID: 11, PPID: 10, State: 'R', Title: title},
			12: {PID: 12, PPID: 10, State: 'Z'}, // a zombie has no command line either
		}}
	}
	reads := 0
	readTree = func(pid, uid int) (*proc.Snapshot, error) {
		require.Equal(t, 10, pid)
		reads++
		if reads < 3 {
			return tree(""), nil
		}
		return tree("/bin/sleep 1000"), nil
	}
	t.Cleanup(func() { readTree = func(pid, uid int) (*proc.Snapshot, error) { return proc.Default().Tree(pid, uid) } })

	snap, err := settledTree(10, 0, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 3, reads)
	assert.Equal(t, "/bin/sleep 1000", snap.Procs[11].Title)

	// One that never gets a command line is what counts after the wait.
	reads = -1 << 30
	start := time.Now()
	snap, err = settledTree(10, 0, 100*time.Millisecond)
	require.NoError(t, err)
	assert.Empty(t, snap.Procs[11].Title)
	assert.Less(t, time.Since(start), 30*time.Second)

	// Nothing execing: one read.
	reads = 100
	_, err = settledTree(10, 0, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 101, reads)
}
