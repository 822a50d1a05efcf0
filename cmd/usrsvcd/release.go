package main

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// releaseAfter returns the heap's free memory to the system once a burst of
// work is over, when the burst left garbage worth returning: every event
// ([releaseAfter.poke]) restarts a wait of quiet; when it ends, if the
// start-up or a reread armed it ([releaseAfter.arm]: loading the
// configuration, adopting or starting every program), or if the heap
// allocated at least burstBytes since the last release (200 programs
// restarted at once), [debug.FreeOSMemory] runs: a collection, then every
// free page of the heap returned. Go's runtime would otherwise keep that
// memory resident, up to its heap goal (at least 4 MB), while the daemon
// idles. A restart now and then allocates far less: the runtime reuses its
// memory for the next one, and nothing is released. No timer runs while
// idle.
type releaseAfter struct {
	quiet   time.Duration
	mu      sync.Mutex
	armed   bool
	stopped bool
	timer   *time.Timer
	last    uint64 // bytes allocated at the last release

	free      func()        // debug.FreeOSMemory; another function in tests
	allocated func() uint64 // bytes the heap allocated so far
}

// burstBytes is the allocation since the last release that makes a burst of
// events worth a release.
const burstBytes = 1 << 20

func newReleaseAfter(quiet time.Duration) *releaseAfter {
	return &releaseAfter{quiet: quiet, free: debug.FreeOSMemory, allocated: heapAllocated}
}

// heapAllocated is the heap's cumulative allocation (runtime/metrics).
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// arm says a burst of work began that is worth a release when it ends.
func (r *releaseAfter) arm() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.armed = true
	r.reset()
}

// poke says an event happened: the burst goes on.
func (r *releaseAfter) poke() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reset()
}

func (r *releaseAfter) reset() {
	if r.stopped {
		return
	}
	if r.timer == nil {
		r.timer = time.AfterFunc(r.quiet, r.fire)
		return
	}
	r.timer.Reset(r.quiet)
}

func (r *releaseAfter) fire() {
	r.mu.Lock()
	if r.stopped || !r.armed && r.allocated()-r.last < burstBytes {
		r.mu.Unlock()
		return
	}
	r.armed = false
	r.mu.Unlock()
	r.free() // a few milliseconds: not under the lock events take
	done := r.allocated()
	r.mu.Lock()
	r.last = done
	r.mu.Unlock()
}

// stop cancels a pending release.
func (r *releaseAfter) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.timer != nil {
		r.timer.Stop()
	}
}
