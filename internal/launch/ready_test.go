package launch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readyBatch returns the launcher kept ready for exe, waiting for it.
func readyBatch(t *testing.T, exe string) *batch {
	var b *batch
	testWaitFor(t, func() bool {
		ready.Lock()
		defer ready.Unlock()
		if slot := ready.slots[exe]; slot != nil {
			b = slot.b
		}
		return b != nil
	}, "a launcher kept ready")
	return b
}

// A launcher kept ready is taken by the next start (no launcher started
// for it), another one takes its place, an idle one that dies is replaced,
// and stop leaves no launcher running. Not parallel: it counts launchers.
func TestKeepReady(t *testing.T) {
	const exe = "/proc/self/exe"
	stop := KeepReady(exe)
	first := readyBatch(t, exe)
	before := LaunchersStarted()
	job := testJob(t.TempDir(), sleepToken())
	job.Window = 50 * time.Millisecond
	res, err := Spawn(ctxMinute(t), exe, job, nil)
	require.NoError(t, err)
	require.Equal(t, Started, res.Outcome, "%+v", res)
	killAfter(t, res.Process.PID)
	second := readyBatch(t, exe)
	assert.NotSame(t, first, second, "a new one is kept ready")
	assert.Equal(t, before+1, LaunchersStarted(), "the start took the ready one; one was started to replace it")
	<-first.readerDone // the used one exited once its job was done

	// Killed while idle: the next start does not use it.
	require.NoError(t, second.cmd.Process.Kill())
	<-second.readerDone
	job = testJob(t.TempDir(), sleepToken())
	job.Window = 50 * time.Millisecond
	res, err = Spawn(ctxMinute(t), exe, job, nil)
	require.NoError(t, err)
	require.Equal(t, Started, res.Outcome, "%+v", res)
	killAfter(t, res.Process.PID)

	third := readyBatch(t, exe)
	stop()
	<-third.readerDone
	assert.NotNil(t, third.cmd.ProcessState, "stopped and reaped")
	ready.Lock()
	assert.Empty(t, ready.slots)
	ready.Unlock()
}
