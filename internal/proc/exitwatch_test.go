package proc_test

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestExitWatcher(t *testing.T) {
	t.Parallel()
	w, err := proc.NewExitWatcher()
	require.NoError(t, err)
	defer w.Close()

	const n = 20
	var pfds [n]*proc.Pidfd
	var stops [n]func() bool
	var fired [n]atomic.Int32
	before := runtime.NumGoroutine()
	for i := range n {
		pfds[i], err = proc.PidfdOpen(testproc.New(t, "sleep").Detach(t))
		require.NoError(t, err)
		defer pfds[i].Close()
		stops[i], err = w.Watch(pfds[i], func() { fired[i].Add(1) })
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before+1, "no goroutine per watch")

	// A stopped watch never fires; the others fire once each, promptly.
	require.True(t, stops[0](), "stopped before the exit")
	assert.False(t, stops[0](), "stopped once")
	killed := time.Now()
	for _, p := range pfds {
		require.NoError(t, p.Signal(syscall.SIGKILL))
	}
	require.Eventually(t, func() bool {
		for i := 1; i < n; i++ {
			if fired[i].Load() == 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond)
	t.Logf("%d SIGKILLs -> every onExit in %v", n-1, time.Since(killed))
	time.Sleep(50 * time.Millisecond)
	assert.Zero(t, fired[0].Load(), "a stopped watch fired")
	for i := 1; i < n; i++ {
		assert.Equal(t, int32(1), fired[i].Load(), "watch %d", i)
		assert.False(t, stops[i](), "stop after onExit")
	}

	// A process that has exited already fires at once.
	var late atomic.Int32
	_, err = w.Watch(pfds[0], func() { late.Add(1) })
	require.NoError(t, err)
	require.Eventually(t, func() bool { return late.Load() == 1 }, 10*time.Second, time.Millisecond)
}

func TestExitWatcherClose(t *testing.T) {
	t.Parallel()
	w, err := proc.NewExitWatcher()
	require.NoError(t, err)
	p, err := proc.PidfdOpen(testproc.New(t, "sleep").Detach(t))
	require.NoError(t, err)
	defer p.Close()
	var fired atomic.Int32
	_, err = w.Watch(p, func() { fired.Add(1) })
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { done <- w.Close() }()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the watcher")
	}
	require.NoError(t, p.Signal(syscall.SIGKILL))
	time.Sleep(50 * time.Millisecond)
	assert.Zero(t, fired.Load(), "onExit after Close")
	assert.NoError(t, w.Close(), "closed twice")
	_, err = w.Watch(p, func() {})
	assert.Error(t, err, "a watch after Close")

	// A pidfd closed while watched leaves the set; its onExit never runs.
	w2, err := proc.NewExitWatcher()
	require.NoError(t, err)
	defer w2.Close()
	q, err := proc.PidfdOpen(testproc.New(t, "sleep").Detach(t))
	require.NoError(t, err)
	_, err = w2.Watch(q, func() { fired.Add(1) })
	require.NoError(t, err)
	require.NoError(t, q.Close())
	_, err = w2.Watch(q, func() {})
	assert.Error(t, err, "a watch of a closed pidfd")
}
