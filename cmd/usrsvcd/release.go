package main

import (
	"runtime/debug"
	"sync"
	"time"
)

// releaseAfter returns the heap's free memory to the system once a burst of
// work is over: [releaseAfter.arm] (at start-up, after a reread) starts the
// wait, every event meanwhile ([releaseAfter.poke]) restarts it, and quiet
// that long after the last one, [debug.FreeOSMemory] runs once: a
// collection, then every free page of the heap returned (the garbage of
// loading the configuration and of starting or adopting the programs).
// Events while not armed (a restart now and then) do nothing: the runtime
// reuses that memory for the next ones. No timer runs while idle.
type releaseAfter struct {
	quiet time.Duration
	mu    sync.Mutex
	armed bool
	timer *time.Timer
	free  func() // debug.FreeOSMemory; another function in tests
}

func newReleaseAfter(quiet time.Duration) *releaseAfter {
	return &releaseAfter{quiet: quiet, free: debug.FreeOSMemory}
}

// arm says a burst of work began: the release comes quiet after its last event.
func (r *releaseAfter) arm() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.armed = true
	r.reset()
}

// poke says an event happened: while armed, the release waits again.
func (r *releaseAfter) poke() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.armed {
		r.reset()
	}
}

func (r *releaseAfter) reset() {
	if r.timer == nil {
		r.timer = time.AfterFunc(r.quiet, r.fire)
		return
	}
	r.timer.Reset(r.quiet)
}

func (r *releaseAfter) fire() {
	r.mu.Lock()
	armed := r.armed
	r.armed = false
	r.mu.Unlock()
	if armed {
		r.free()
	}
}

// stop cancels a pending release.
func (r *releaseAfter) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.armed = false
	if r.timer != nil {
		r.timer.Stop()
	}
}
