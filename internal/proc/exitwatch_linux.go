package proc

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExitWatcher waits for the exit of many processes with one goroutine: their
// pidfds sit in one epoll set, which is itself parked in Go's netpoller.
//
// A goroutine per process blocked in [Pidfd.Wait] does the same job, but
// each costs its stack (4 kB once the wait's context registration has
// grown it), the goroutine and the context: about 5.8 kB a process in a
// supervisor of 200 programs, against a map entry here.
type ExitWatcher struct {
	ep    *os.File // the epoll set: non-blocking, so in the netpoller
	rc    syscall.RawConn
	mu    sync.Mutex
	next  uint64
	funcs map[uint64]func()
	once  sync.Once
	done  chan struct{}
}

// NewExitWatcher creates the epoll set and starts the goroutine that reads
// it. Close stops it.
func NewExitWatcher() (*ExitWatcher, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, &os.SyscallError{Syscall: "epoll_create1", Err: err}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, &os.SyscallError{Syscall: "fcntl", Err: err}
	}
	ep := os.NewFile(uintptr(fd), "epoll")
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, err
	}
	w := &ExitWatcher{ep: ep, rc: rc, funcs: map[uint64]func(){}, done: make(chan struct{})}
	go w.run()
	return w, nil
}

// Watch calls onExit once the process of p has exited (at once if it
// already has), on the watcher's goroutine: exits are delivered one at a
// time, so onExit should hand the news on rather than work long. stop
// cancels the watch and reports whether it did so before onExit was called
// (false: onExit runs or ran). Call stop before closing p; a closed pidfd
// leaves the epoll set by itself, its onExit never called.
func (w *ExitWatcher) Watch(p *Pidfd, onExit func()) (stop func() bool, err error) {
	w.mu.Lock()
	id := w.next
	w.next++
	w.funcs[id] = onExit
	w.mu.Unlock()
	// The id in the event's data, not the fd: a descriptor number closed and
	// reused by another watch never fires the old one's onExit.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	if err := w.ctl(p, unix.EPOLL_CTL_ADD, &ev); err != nil {
		w.forget(id)
		return nil, err
	}
	return func() bool {
		if w.forget(id) == nil {
			return false
		}
		_ = w.ctl(p, unix.EPOLL_CTL_DEL, nil) // p already closed: the kernel removed it
		return true
	}, nil
}

// ctl runs epoll_ctl on p's descriptor, holding both files open meanwhile.
func (w *ExitWatcher) ctl(p *Pidfd, op int, ev *unix.EpollEvent) error {
	prc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	err = prc.Control(func(pfd uintptr) {
		err := w.rc.Control(func(epfd uintptr) {
			cerr = unix.EpollCtl(int(epfd), op, int(pfd), ev)
		})
		if cerr == nil {
			cerr = err
		}
	})
	if err != nil {
		return err
	}
	if cerr != nil {
		var errno syscall.Errno
		if errors.As(cerr, &errno) {
			return &os.SyscallError{Syscall: "epoll_ctl", Err: errno}
		}
		return fmt.Errorf("epoll_ctl: %w", cerr)
	}
	return nil
}

// forget removes watch id, returning its onExit (nil when already gone).
func (w *ExitWatcher) forget(id uint64) func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.funcs[id]
	delete(w.funcs, id)
	return f
}

func (w *ExitWatcher) run() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 16)
	for {
		var n int
		var werr error
		// The netpoller wakes this read when the set has events; the
		// callback drains them first, so none is missed between waits.
		err := w.rc.Read(func(fd uintptr) bool {
			n, werr = unix.EpollWait(int(fd), events, 0)
			if werr == unix.EINTR {
				n, werr = 0, nil
			}
			return n > 0 || werr != nil
		})
		if err != nil || werr != nil {
			return // closed
		}
		for _, ev := range events[:n] {
			if f := w.forget(uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32); f != nil {
				f()
			}
		}
	}
}

// Close stops the watcher: no onExit is called after it returns (it waits
// for one under way). Pending watches are dropped; their pidfds stay open.
func (w *ExitWatcher) Close() error {
	var err error
	w.once.Do(func() {
		err = w.ep.Close()
		<-w.done
	})
	return err
}
