package launch

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
)

func stubReadTree(t *testing.T, f func(pid, uid int) (*proc.Snapshot, error)) {
	readTree = f
	t.Cleanup(func() { readTree = func(pid, uid int) (*proc.Snapshot, error) { return proc.Default().Tree(pid, uid) } })
}

// The tree at the end of the window is read until two reads agree: a
// process forked during a read, or one in the middle of an exec (its
// parent's title, or none yet), is read again, not missed or taken for a
// stranger. Not parallel: it replaces readTree.
func TestSettledTreeReadsUntilStable(t *testing.T) {
	tree := func(reads int) *proc.Snapshot {
		s := &proc.Snapshot{Procs: map[int]*proc.Process{
			10: {PID: 10, PPID: 1, State: 'S', Title: "usrsvc-launcher"},
			11: {PID: 11, PPID: 10, State: 'R', Title: "/bin/sh -c x"},
			12: {PID: 12, PPID: 10, State: 'Z'}, // a zombie has no command line
		}}
		if reads >= 2 { // forked during the walk
			s.Procs[13] = &proc.Process{PID: 13, PPID: 11, State: 'R', Title: "/bin/sh -c x"}
		}
		if reads >= 3 { // its exec done
			s.Procs[13].Title = "/bin/sleep 1000"
		}
		return s
	}
	reads := 0
	stubReadTree(t, func(pid, uid int) (*proc.Snapshot, error) {
		require.Equal(t, 10, pid)
		reads++
		return tree(reads), nil
	})
	snap, err := settledTree(10, 0, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 4, reads)
	assert.Equal(t, "/bin/sleep 1000", snap.Procs[13].Title)

	// One that never settles: what is read after the wait counts.
	reads = 0
	stubReadTree(t, func(pid, uid int) (*proc.Snapshot, error) {
		reads++
		s := tree(3)
		s.Procs[13].StartTicks = uint64(reads)
		return s, nil
	})
	start := time.Now()
	snap, err = settledTree(10, 0, 50*time.Millisecond)
	require.NoError(t, err)
	assert.NotNil(t, snap.Procs[13])
	assert.Less(t, time.Since(start), 30*time.Second)

	// An error is returned as it is.
	stubReadTree(t, func(pid, uid int) (*proc.Snapshot, error) { return nil, errors.New("boom") })
	_, err = settledTree(10, 0, time.Minute)
	assert.EqualError(t, err, "boom")
}
