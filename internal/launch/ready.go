package launch

import (
	"sync"
)

// ready holds the launchers kept ready, by path (see KeepReady).
var ready struct {
	sync.Mutex
	slots map[string]*readySlot
}

type readySlot struct {
	users    int           // KeepReady calls not stopped
	b        *batch        // the launcher ready, nil while one starts
	starting bool          // a goroutine is starting one
	broken   bool          // one exited by itself: not a launcher, none more
	started  chan struct{} // closed when that goroutine is done
}

// KeepReady keeps a launcher of exe started ahead, idle on its socket, so
// that the next [Spawn] for exe does not pay for starting a Go process
// (the restart of a crashed program, above all). The launcher kept ready
// is taken by the next Spawn that needs a new launcher, and another one is
// started in the background to replace it; it serves one batch of jobs and
// exits as any launcher does. An idle launcher does nothing (no timer, no
// allocation: its memory does not grow) and exits when its caller closes
// its socket or dies, like any launcher, so the guarantees of a caller
// killed during a start are unchanged.
//
// stop ends what KeepReady started: the launcher kept ready exits, and no
// other is started. Calls nest: a launcher is kept ready for exe while one
// KeepReady for it is not stopped.
func KeepReady(exe string) (stop func()) {
	ready.Lock()
	if ready.slots == nil {
		ready.slots = map[string]*readySlot{}
	}
	slot := ready.slots[exe]
	if slot == nil {
		slot = &readySlot{}
		ready.slots[exe] = slot
	}
	slot.users++
	slot.refill(exe)
	ready.Unlock()
	var once sync.Once
	return func() { once.Do(func() { stopReady(exe, slot) }) }
}

// refill starts a launcher for the slot in the background when it has none
// and none is starting. Called with ready locked.
func (slot *readySlot) refill(exe string) {
	if slot.users == 0 || slot.starting || slot.b != nil || slot.broken {
		return
	}
	slot.starting = true
	done := make(chan struct{})
	slot.started = done
	go func() {
		defer close(done)
		b, err := startBatch(exe)
		ready.Lock()
		slot.starting = false
		keep := err == nil && slot.users > 0
		if keep {
			slot.b = b
		}
		ready.Unlock()
		if err == nil && !keep {
			b.close() // stopped meanwhile
		}
	}()
}

// takeReady returns the launcher kept ready for exe, if any, and starts its
// replacement. Called with batches locked.
func takeReady(exe string) *batch {
	ready.Lock()
	defer ready.Unlock()
	slot := ready.slots[exe]
	if slot == nil {
		return nil
	}
	b := slot.b
	slot.b = nil
	if b != nil && b.dead {
		// Killed while idle, or not a launcher (it exited by itself: then
		// no other is kept ready). Reaped aside.
		slot.broken = !b.signaled()
		go b.close()
		b = nil
	}
	slot.refill(exe)
	return b
}

// stopReady ends a KeepReady: the last one for exe closes the launcher kept
// ready, after the one starting, if any, is started.
func stopReady(exe string, slot *readySlot) {
	ready.Lock()
	slot.users--
	last := slot.users == 0
	if last && ready.slots[exe] == slot {
		delete(ready.slots, exe)
	}
	started := slot.started
	ready.Unlock()
	if !last {
		return
	}
	if started != nil {
		<-started
	}
	ready.Lock()
	b := slot.b
	slot.b = nil
	ready.Unlock()
	if b != nil {
		b.close()
	}
}
