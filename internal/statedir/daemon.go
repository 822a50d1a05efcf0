package statedir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/atomicfile"
	"github.com/usrsvc/usrsvc/internal/errs"
	"github.com/usrsvc/usrsvc/internal/proc"
)

// TakeDaemonLock takes d's daemon lock without waiting: errs.DaemonRunning
// (with the holder's pid) when another supervisor holds it — also when the
// lock file is gone (the state directory was removed) but a daemon still
// holds the lock it had (see [Dir.LostLockHolder]). The lock file also names
// the holder, for usrsvcd stop and status when the pidfile is gone; a
// failure to write it is returned as warn, not refused.
func (d Dir) TakeDaemonLock(pidfile string) (f *os.File, warn error, err error) {
	if err := d.CheckSafe(); err != nil {
		return nil, nil, err
	}
	if _, err := os.Lstat(d.Path(DaemonLock)); errors.Is(err, fs.ErrNotExist) {
		if pid := d.LostLockHolder(pidfile, true); pid > 0 {
			return nil, nil, fmt.Errorf("%w (pid %d): another usrsvcd supervises %s, though its lock file is gone "+
				"(the state directory was removed or moved: it recreates it)", errs.DaemonRunning, pid, d)
		}
	}
	return d.RetakeDaemonLock(pidfile)
}

// RetakeDaemonLock takes d's daemon lock like TakeDaemonLock, for a daemon
// whose lock file was removed with its state directory: it recreates the
// directory and a new lock file, and takes it unless another daemon
// already holds the new one (errs.DaemonRunning).
func (d Dir) RetakeDaemonLock(pidfile string) (f *os.File, warn error, err error) {
	if _, err := d.Ensure("."); err != nil {
		return nil, nil, err
	}
	f, err = LockFile(context.Background(), d.Path(DaemonLock), 300*time.Millisecond)
	if errors.Is(err, errs.Locked) {
		pid, _, _ := d.DaemonStatus(context.Background(), pidfile)
		return nil, nil, fmt.Errorf("%w (pid %d): another usrsvcd supervises %s", errs.DaemonRunning, pid, d)
	}
	if err != nil {
		return nil, nil, err
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		warn = fmt.Errorf("cannot write this process's pid into the daemon lock file %s: %w; "+
			"usrsvcd stop and status will rely on the pidfile", f.Name(), err)
	}
	return f, warn, nil
}

// HoldsDaemonLock reports whether f, a daemon lock taken by
// TakeDaemonLock, is still d's lock file: false when the file at its path
// is gone or another (the state directory was removed, or moved away).
// When that cannot be read (out of open files) it reports true: no
// verdict.
func (d Dir) HoldsDaemonLock(f *os.File) bool {
	var held, now unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &held); err != nil {
		return true
	}
	err := unix.Stat(d.Path(DaemonLock), &now)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false
	}
	if err != nil {
		return true
	}
	return held.Dev == now.Dev && held.Ino == now.Ino && held.Nlink > 0
}

// LostLockHolder returns the pid of a live process that holds, with an
// exclusive flock, a daemon lock of d that is no longer at its path (the
// state directory was removed or moved away), or 0: the [Main] pidfile's
// process, which holds such a lock whatever its path now (a daemon of this
// configuration, whatever its state directory), and, with self, this
// process (a Manager.Run in it, whose lock file was deleted).
func (d Dir) LostLockHolder(pidfile string, self bool) int {
	lockPath := d.Path(DaemonLock)
	if pidfile != "" {
		if data, err := atomicfile.ReadLimit(pidfile, 64); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 && pid != os.Getpid() &&
				holdsLostLock(pid, func(target string) bool {
					return filepath.Base(strings.TrimSuffix(target, " (deleted)")) == DaemonLock && target != lockPath
				}) {
				return pid
			}
		}
	}
	if self && holdsLostLock(os.Getpid(), func(target string) bool { return target == lockPath+" (deleted)" }) {
		return os.Getpid()
	}
	return 0
}

// holdsLostLock reports whether pid (a live process of this account) has
// an open file whose /proc link target is one of lost, locked exclusively.
func holdsLostLock(pid int, lost func(target string) bool) bool {
	if q, err := proc.Default().Stat(pid); err != nil || q.Zombie() || q.UID != os.Getuid() {
		return false
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		link := dir + "/" + e.Name()
		target, err := os.Readlink(link)
		if err != nil || !lost(target) {
			continue
		}
		// Opening the link opens the file itself, removed or not: a shared
		// lock refused means that an exclusive one is held on it.
		f, err := os.OpenFile(link, os.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		f.Close() // releases a lock taken
		if errors.Is(err, unix.EWOULDBLOCK) {
			return true
		}
	}
	return false
}

// DaemonStatus reports whether a usrsvcd (or any Manager.Run) supervises
// d, and its pid: the daemon lock tells whether one runs; the lock file,
// which the holder writes its pid into right after taking the lock, or
// else pidfile (the [Main] pidfile), which pid it is. A pid is believed
// only when that process lives: a daemon that just took the lock has not
// written its pid yet, and a killed daemon holds its lock a few
// milliseconds after its pid turned into a zombie. So DaemonStatus waits
// (up to a second, or until ctx is done) for a live pid; 0 with running
// true means that a daemon runs whose pid is unknown.
//
// The error says when it cannot know: the daemon lock exists but cannot
// be opened (errs.Resource when this process is out of open files or
// memory, errs.Permission otherwise; running is then false), or a daemon
// runs but its pid could not be read (errs.Resource; running is true).
func (d Dir) DaemonStatus(ctx context.Context, pidfile string) (pid int, running bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for {
		pid, running, err := d.daemonPID(pidfile)
		if err != nil || !running || pid > 0 {
			return pid, running, err
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return pid, running, err
		case <-t.C:
		}
	}
}

// DaemonRunning reports whether a daemon holds d's daemon lock, at once.
func (d Dir) DaemonRunning() bool {
	_, running, _ := d.daemonPID("")
	return running
}

// daemonPID is one look: whether the daemon lock is held, and the first
// live pid among the lock file's and the pidfile's (0 when neither lives).
func (d Dir) daemonPID(pidfile string) (int, bool, error) {
	lockPath := d.Path(DaemonLock)
	f, err := os.OpenFile(lockPath, os.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// No daemon ever ran here; or the state directory was removed
		// under a running one (it recreates it soon), which still holds its
		// lock: the pidfile names it.
		if pid := d.LostLockHolder(pidfile, false); pid > 0 {
			return pid, true, nil
		}
		return 0, false, nil
	}
	if errno, ok := errs.ResourceErrno(err); ok {
		return 0, false, fmt.Errorf("%w: cannot tell whether usrsvcd runs: opening %s: %s",
			errs.Resource, lockPath, errs.ResourceHelp(errno))
	}
	if err != nil {
		return 0, false, fmt.Errorf("%w: cannot tell whether usrsvcd runs: %w; make it yours and private, or remove it",
			errs.Permission, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return 0, false, nil
	}
	for _, p := range []string{lockPath, pidfile} {
		if p == "" {
			continue
		}
		data, err := atomicfile.Read(p)
		if errno, ok := errs.ResourceErrno(err); ok {
			return 0, true, fmt.Errorf("%w: usrsvcd runs, but its pid is unknown: reading %s: %s",
				errs.Resource, p, errs.ResourceHelp(errno))
		}
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			continue
		}
		q, err := proc.Default().Stat(pid)
		if errno, ok := errs.ResourceErrno(err); ok {
			return 0, true, fmt.Errorf("%w: usrsvcd runs, but whether pid %d is it is unknown: %s",
				errs.Resource, pid, errs.ResourceHelp(errno))
		}
		if err == nil && !q.Zombie() {
			return pid, true, nil
		}
	}
	return 0, true, nil
}

// SignalReread asks the usrsvcd (or any Manager.Run) that supervises d to
// reread its configuration — it sends SIGUSR1 — and waits for its
// acknowledgement, which the daemon records in d once it has applied the
// new configuration or refused it. It returns the daemon's pid and its
// summary ("5 programs (1 added, ...)").
//
// The error wraps errs.NotRunning when no daemon runs, errs.Permission
// when it cannot be signalled, errs.InvalidConfig (with every problem)
// when the daemon refused the configuration and keeps its old one,
// errs.Resource or errs.Permission when the state directory cannot be
// written (then no acknowledgement can come: the daemon's log tells), and
// errs.NoAnswer when ctx ends first.
func (d Dir) SignalReread(ctx context.Context, pidfile string) (pid int, summary string, err error) {
	pid, running, err := d.DaemonStatus(ctx, pidfile)
	if err != nil {
		return 0, "", err
	}
	if !running || pid <= 0 {
		return 0, "", fmt.Errorf("%w: usrsvcd is not running: nothing to reread", errs.NotRunning)
	}
	before, _ := d.ReloadAck()
	// The daemon acknowledges in the state directory: when nothing can be
	// written there (a full disk), no acknowledgement will come. The reread
	// itself works, so the signal still goes; the answer comes at once.
	unwritable := func(err error) error {
		return fmt.Errorf("usrsvcd (pid %d) was sent the reread, but its acknowledgement cannot be written (%w); "+
			"its log tells whether the configuration was applied", pid, err)
	}
	probe := d.CheckWritable()
	if err := unix.Kill(pid, unix.SIGUSR1); err != nil {
		return pid, "", fmt.Errorf("%w: cannot signal usrsvcd (pid %d): %w", errs.Permission, pid, err)
	}
	if probe != nil {
		return pid, "", unwritable(probe)
	}
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ack, err := d.ReloadAck()
		if err == nil && ack.Generation > before.Generation {
			if !ack.OK {
				return pid, "", fmt.Errorf("%w: usrsvcd (pid %d) rejected the configuration (%s):\n%s",
					errs.InvalidConfig, pid, ack.Message, strings.Join(ack.Problems, "\n"))
			}
			return pid, ack.Message, nil
		}
		select {
		case <-ctx.Done():
			if err := d.CheckWritable(); err != nil {
				return pid, "", unwritable(err)
			}
			return pid, "", fmt.Errorf("%w: usrsvcd (pid %d) did not acknowledge the reread within %v: %w",
				errs.NoAnswer, pid, time.Since(start).Round(time.Second), context.Cause(ctx))
		case <-tick.C:
		}
	}
}
