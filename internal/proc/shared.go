package proc

import (
	"sync"
	"sync/atomic"
)

// SharedSnapshot is [FS.Snapshot] for concurrent callers: at most one pass
// over /proc per FS root and uid runs at a time, and every caller that
// arrives while it runs shares the next one. Each caller still gets a
// snapshot whose pass began after its call — what a pass of its own would
// have seen, or newer — but many callers at once cost two passes, not one
// each. (usrsvcd restarting N programs killed at once took N snapshots of
// about N processes each: O(N²), minutes for 1 000 programs.)
func (fs FS) SharedSnapshot(uid int) (*Snapshot, error) {
	key := sharedKey{root: fs.root(), uid: uid}
	shared.mu.Lock()
	st := shared.states[key]
	if st == nil {
		if shared.states == nil {
			shared.states = map[sharedKey]*sharedState{}
		}
		st = &sharedState{}
		shared.states[key] = st
	}
	if st.next == nil {
		st.next = &pass{done: make(chan struct{})}
	}
	p := st.next
	if !st.running {
		st.running = true
		go st.run(fs, uid)
	}
	shared.mu.Unlock()
	<-p.done
	return p.snap, p.err
}

type sharedKey struct {
	root string
	uid  int
}

// shared holds, per root and uid, the pass running and the one callers
// wait for.
var shared struct {
	mu     sync.Mutex
	states map[sharedKey]*sharedState
}

type sharedState struct {
	running bool  // a goroutine runs passes (guarded by shared.mu)
	next    *pass // the pass the callers arriving now will share
}

type pass struct {
	done chan struct{}
	snap *Snapshot
	err  error
}

// sharedPasses counts the passes SharedSnapshot ran, and beforePass, when
// set, runs before each (for tests).
var (
	sharedPasses atomic.Int64
	beforePass   func()
)

// run takes the waited-for passes one after the other, until none is left.
func (st *sharedState) run(fs FS, uid int) {
	for {
		shared.mu.Lock()
		p := st.next
		st.next = nil
		if p == nil {
			st.running = false
			shared.mu.Unlock()
			return
		}
		shared.mu.Unlock()
		if beforePass != nil {
			beforePass()
		}
		p.snap, p.err = fs.Snapshot(uid)
		sharedPasses.Add(1)
		close(p.done)
	}
}
