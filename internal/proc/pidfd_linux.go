package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Pidfd is a process file descriptor (pidfd_open(2)): a handle on one
// process, our child or not, that cannot be confused with a later process
// reusing the pid. It becomes readable when the process exits (not when it
// is reaped), which [Pidfd.Wait] waits for in Go's netpoller, without a
// goroutine or a busy loop.
//
// Before trusting a Pidfd, re-check that the pid still has the start time
// (and title) you expect: the pid may have been reused between your
// snapshot and PidfdOpen.
type Pidfd struct {
	f      *os.File
	fd     int // the descriptor, kept so that Fd never calls f.Fd (which would make f blocking)
	closed atomic.Bool
}

// PidfdOpen opens a non-blocking pidfd on pid. Any error means "no pidfd
// here" (ENOSYS before Linux 5.3, EPERM under some seccomp filters, ESRCH
// when the process is gone): fall back to polling /proc.
func PidfdOpen(pid int) (*Pidfd, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, &os.SyscallError{Syscall: "pidfd_open", Err: err}
	}
	// fd is non-blocking, so os.NewFile registers it with the netpoller.
	f := os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	if f == nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pidfd_open: bad descriptor %d", fd)
	}
	return &Pidfd{f: f, fd: fd}, nil
}

// Fd returns the descriptor, e.g. for an epoll set of your own. It stays
// owned by p: do not close it.
func (p *Pidfd) Fd() int { return p.fd }

// Signal sends sig to the process (pidfd_send_signal(2)). It fails with
// ESRCH once the process has been reaped, but still succeeds for an exited,
// unreaped one (a zombie): delivery is not proof of life, see [Pidfd.Exited].
func (p *Pidfd) Signal(sig syscall.Signal) error {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), sig, nil, 0)
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.SyscallError{Syscall: "pidfd_send_signal", Err: serr}
	}
	return nil
}

// Exited reports, without blocking, whether the process has exited (zombie
// or reaped). It reports false as well if p is closed.
func (p *Pidfd) Exited() bool {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return false
	}
	var readable bool
	if rc.Control(func(fd uintptr) { readable, _ = pollIn(int(fd)) }) != nil {
		return false
	}
	return readable
}

// pollIn reports whether fd is readable now.
func pollIn(fd int) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, err
		}
		return n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0, nil
	}
}

// aLongTimeAgo is a deadline in the past, to wake a blocked Wait.
var aLongTimeAgo = time.Unix(1, 0)

// Wait blocks until the process exits (nil) or ctx is done (ctx.Err()). It
// parks the goroutine in the netpoller; cancelling ctx wakes it through a
// read deadline. Calls to Wait on one Pidfd must not overlap; other methods
// may be called meanwhile, and Close makes Wait return an error wrapping
// [os.ErrClosed].
func (p *Pidfd) Wait(ctx context.Context) error {
	if err := p.f.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("pidfd: %w", err) // os.ErrClosed when closed
	}
	rc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = p.f.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		var readable bool
		readable, perr = pollIn(int(fd))
		return readable || perr != nil
	})
	switch {
	case perr != nil:
		return &os.SyscallError{Syscall: "poll", Err: perr}
	case err == nil:
		return nil
	case p.closed.Load():
		return fmt.Errorf("pidfd: %w", os.ErrClosed)
	case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil:
		if p.Exited() {
			return nil
		}
		return ctx.Err()
	default:
		return fmt.Errorf("pidfd: %w", err)
	}
}

// Close closes the descriptor.
func (p *Pidfd) Close() error {
	p.closed.Store(true)
	return p.f.Close()
}
