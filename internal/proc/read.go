package proc

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// readSmall reads a procfs file whose content the kernel produces in one go
// (stat, cmdline) into buf[:0], growing it as needed, and returns the
// content. path is relative to dirfd (unix.AT_FDCWD for an absolute path).
//
// A read shorter than the space offered is taken as the end of the file:
// the kernel fills the whole request for these files (seq_file single_open
// for stat, a loop over the argument pages for cmdline), and so does a
// regular fixture file. This saves a read per file in [FS.Snapshot].
func readSmall(dirfd int, path string, buf []byte) ([]byte, error) {
	fd, err := openat(dirfd, path)
	if err != nil {
		return buf[:0], err
	}
	defer unix.Close(fd)
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, max(cap(buf), 512))...)[:len(buf)]
		}
		avail := cap(buf) - len(buf)
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return buf, err
		}
		buf = buf[:len(buf)+n]
		if n == 0 || n < avail {
			return buf, nil
		}
	}
}

// readFile reads a whole /proc file with plain open/read/close, reading
// until end of file (a seq_file may return less than asked before its end).
// os.ReadFile adds an fstat, four fcntl calls and a netpoller registration
// attempt per file, most of a short-lived launcher's reading of its tree.
// Errors are *os.PathError like os.ReadFile's.
func readFile(path string, buf []byte) ([]byte, error) {
	fd, err := openat(unix.AT_FDCWD, path)
	if err != nil {
		return buf[:0], &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, max(cap(buf), 512))...)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return buf, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func openat(dirfd int, path string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// dirUID returns the owner of the /proc/PID directory (the process's
// effective uid, or root for a non-dumpable process).
func dirUID(dirfd int, path string) (int, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(dirfd, path, &st, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return int(st.Uid), nil
	}
}

// Stat reads one process's /proc/PID/stat only (no cmdline): a cheap
// re-check of its state and start time. UID comes from the directory, which
// is stat'ed first. An error wraps [os.ErrNotExist] when the process is gone
// (a zombie is returned, with State 'Z').
func (fs FS) Stat(pid int) (*Process, error) {
	return fs.read(pid, false)
}

// Process reads one process: its directory's owner, stat and cmdline. An
// error wraps [os.ErrNotExist] when the process is gone (a zombie is
// returned, with State 'Z').
func (fs FS) Process(pid int) (*Process, error) {
	return fs.read(pid, true)
}

func (fs FS) read(pid int, cmdline bool) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("proc: pid %d: %w", pid, os.ErrNotExist)
	}
	boot, err := fs.BootTime()
	if err != nil {
		return nil, err
	}
	dir := fs.root() + "/" + strconv.Itoa(pid)
	r := reader{dirfd: unix.AT_FDCWD, boot: boot}
	p, err := r.process(dir, pid, -1, cmdline)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// reader reads processes with one reused buffer.
type reader struct {
	dirfd int // the /proc directory, or AT_FDCWD with absolute names
	boot  time.Time
	buf   []byte
}

// process reads the process of directory name (relative to r.dirfd). It
// returns nil, nil when uid >= 0 and the process is someone else's; errors
// wrap os.ErrNotExist when it is gone.
func (r *reader) process(name string, pid, uid int, cmdline bool) (*Process, error) {
	owner, err := dirUID(r.dirfd, name)
	if err != nil {
		return nil, wrapErr("stat", name, err)
	}
	if uid >= 0 && owner != uid {
		return nil, nil
	}
	p := &Process{UID: owner}
	r.buf, err = readSmall(r.dirfd, name+"/stat", r.buf)
	if err != nil {
		return nil, wrapErr("read", name+"/stat", err)
	}
	if err := parseStat(r.buf, p); err != nil {
		return nil, fmt.Errorf("%s/stat: %w", name, err)
	}
	if p.PID != pid {
		return nil, fmt.Errorf("%s/stat: pid %d: %w", name, p.PID, ErrFormat)
	}
	p.Started = r.boot.Add(ticks(p.StartTicks))
	if !cmdline {
		return p, nil
	}
	r.buf, err = readSmall(r.dirfd, name+"/cmdline", r.buf)
	if err != nil {
		return nil, wrapErr("read", name+"/cmdline", err)
	}
	parseCmdline(r.buf, p)
	return p, nil
}

// Uptime is the time since boot on the clock of StartTicks
// (CLOCK_BOOTTIME, which runs on through a suspend): Uptime() minus
// StartTicks is how long a process has been running, to 10 ms, whatever
// the wall clock does. It is 0 if the clock cannot be read.
func Uptime() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// StartUptime is a process's start as time since boot (see [Uptime]).
func StartUptime(startTicks uint64) time.Duration { return ticks(startTicks) }

// ticks converts clock ticks to a duration.
func ticks(t uint64) time.Duration {
	return time.Duration(t) * (time.Second / ClockTicks)
}

var bootTimes sync.Map // root -> time.Time

// BootTime returns the boot time: btime of <root>/stat. It is read once per
// FS root and cached.
func (fs FS) BootTime() (time.Time, error) {
	root := fs.root()
	if t, ok := bootTimes.Load(root); ok {
		return t.(time.Time), nil
	}
	path := root + "/stat"
	data, err := readFile(path, nil)
	if err != nil {
		return time.Time{}, err
	}
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		rest, ok := bytes.CutPrefix(line, []byte("btime "))
		if !ok {
			continue
		}
		secs, ok := atoi(bytes.TrimSpace(rest))
		if !ok {
			return time.Time{}, fmt.Errorf("%s: btime %q: %w", path, rest, ErrFormat)
		}
		t := time.Unix(int64(secs), 0)
		bootTimes.Store(root, t)
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s: no btime: %w", path, ErrFormat)
}

// Exe returns the target of /proc/PID/exe, the program's executable, with
// the " (deleted)" suffix that the kernel adds to a replaced file removed.
// A kernel thread has none (an error wrapping [os.ErrNotExist], as when the
// process is gone); another user's process gives a permission error.
func (fs FS) Exe(pid int) (string, error) {
	path := fs.path(pid, "exe")
	s, err := os.Readlink(path)
	if err != nil {
		return "", wrapErr("readlink", path, err)
	}
	return strings.TrimSuffix(s, " (deleted)"), nil
}

// maxEnviron bounds what is read of a process's environment.
const maxEnviron = 4 << 20

// Environ returns the environment pid started with (/proc/PID/environ:
// what it was given at its exec, whatever it changed in its memory since),
// as KEY=VALUE strings.
func (fs FS) Environ(pid int) ([]string, error) {
	f, err := os.Open(fs.path(pid, "environ"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxEnviron))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, kv := range strings.Split(string(data), "\x00") {
		if kv != "" {
			out = append(out, kv)
		}
	}
	return out, nil
}
