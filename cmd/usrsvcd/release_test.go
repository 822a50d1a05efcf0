package main

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestReleaseAfterOnceAfterTheBurst(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	r := newReleaseAfter(100 * time.Millisecond)
	r.free = func() { n.Add(1) }
	defer r.stop()

	r.poke() // not armed: nothing to release
	time.Sleep(250 * time.Millisecond)
	assert.Equal(t, int32(0), n.Load(), "an event alone releases nothing")

	r.arm()
	for range 5 { // the burst: each event restarts the wait
		time.Sleep(50 * time.Millisecond)
		r.poke()
		assert.Equal(t, int32(0), n.Load(), "released during the burst")
	}
	assert.Eventually(t, func() bool { return n.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	r.poke() // after the release: disarmed
	time.Sleep(250 * time.Millisecond)
	assert.Equal(t, int32(1), n.Load(), "one release for one burst")

	r.arm() // a reread
	assert.Eventually(t, func() bool { return n.Load() == 2 }, 10*time.Second, 10*time.Millisecond)
}

func TestReleaseAfterStop(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	r := newReleaseAfter(50 * time.Millisecond)
	r.free = func() { n.Add(1) }
	r.arm()
	r.stop()
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, int32(0), n.Load())
}
