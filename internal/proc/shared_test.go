package proc

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSharedSnapshot(t *testing.T) {
	fs := FS{Root: "testdata/fixture"}
	want, err := fs.Snapshot(-1)
	require.NoError(t, err)

	// A slow pass (50 ms), so that the callers surely overlap it.
	beforePass = func() { time.Sleep(50 * time.Millisecond) }
	t.Cleanup(func() { beforePass = nil })
	before := sharedPasses.Load()
	const callers = 64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			called := time.Now()
			s, err := fs.SharedSnapshot(-1)
			if assert.NoError(t, err) {
				// Never an older pass than one of its own.
				assert.False(t, s.Taken.Before(called), "pass began %v before the call", called.Sub(s.Taken))
				assert.Equal(t, len(want.Procs), len(s.Procs))
			}
		}()
	}
	close(start)
	wg.Wait()
	passes := sharedPasses.Load() - before
	assert.Positive(t, passes)
	assert.Less(t, passes, int64(callers), "callers at once share passes")
	t.Logf("%d callers, %d passes", callers, passes)

	// One caller alone gets a pass of its own, and errors are passed on.
	_, err = FS{Root: "testdata/missing"}.SharedSnapshot(-1)
	assert.Error(t, err)
}
