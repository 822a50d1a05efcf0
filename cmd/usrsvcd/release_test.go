package main

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// testRelease is a releaseAfter that counts its releases, with a heap whose
// allocation the test sets.
func testRelease(quiet time.Duration) (r *releaseAfter, releases *atomic.Int32, alloc *atomic.Uint64) {
	releases, alloc = new(atomic.Int32), new(atomic.Uint64)
	r = newReleaseAfter(quiet)
	r.free = func() { releases.Add(1) }
	r.allocated = alloc.Load
	return r, releases, alloc
}

func TestReleaseAfterStartUpAndRereads(t *testing.T) {
	t.Parallel()
	r, n, _ := testRelease(100 * time.Millisecond)
	defer r.stop()

	r.arm()       // start-up
	for range 5 { // its events: each restarts the wait
		time.Sleep(50 * time.Millisecond)
		r.poke()
		assert.Equal(t, int32(0), n.Load(), "released during the burst")
	}
	assert.Eventually(t, func() bool { return n.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	r.poke() // a restart later: little allocated, nothing released
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, int32(1), n.Load(), "one release for one start-up")

	r.arm() // a reread
	assert.Eventually(t, func() bool { return n.Load() == 2 }, 10*time.Second, 10*time.Millisecond)
}

func TestReleaseAfterABurstThatAllocated(t *testing.T) {
	t.Parallel()
	r, n, alloc := testRelease(50 * time.Millisecond)
	defer r.stop()

	alloc.Store(burstBytes - 1) // events that allocated less
	r.poke()
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, int32(0), n.Load(), "released after a small burst")

	alloc.Store(2 * burstBytes) // 200 programs restarted at once
	r.poke()
	assert.Eventually(t, func() bool { return n.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	r.poke() // nothing allocated since
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, int32(1), n.Load())
}

func TestReleaseAfterStop(t *testing.T) {
	t.Parallel()
	r, n, _ := testRelease(50 * time.Millisecond)
	r.arm()
	r.stop()
	r.poke() // an event of the shutdown
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, int32(0), n.Load())
}
