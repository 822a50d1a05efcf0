package proc_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// Tree finds a child and its grandchild by following the children files,
// and agrees with a full snapshot.
func TestTreeFollowsChildren(t *testing.T) {
	h := testproc.New(t, "spawn-child")
	parent := h.Start(t)
	h.WaitReady(t, readyTimeout)
	var tree *proc.Snapshot
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		var err error
		tree, err = proc.Default().Tree(os.Getpid(), os.Getuid())
		require.NoError(t, err)
		if len(tree.Children(parent.Pid)) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Contains(t, tree.Procs, parent.Pid)
	kids := tree.Children(parent.Pid)
	require.Len(t, kids, 1)
	assert.Contains(t, kids[0].Title, h.Token)

	full, err := proc.Default().Snapshot(os.Getuid())
	require.NoError(t, err)
	var want []int
	for _, p := range full.Descendants(os.Getpid()) {
		want = append(want, p.PID)
	}
	var got []int
	for _, p := range tree.Descendants(os.Getpid()) {
		got = append(got, p.PID)
	}
	assert.Subset(t, got, []int{parent.Pid, kids[0].PID})
	assert.Subset(t, want, got)
}
