// Package proc is the only code of usrsvc that reads /proc.
//
// Everything is read through an [FS], a procfs mount point, so that tests can
// point it at a fixture tree (testdata/). A [Process] is what /proc/PID/stat
// and /proc/PID/cmdline tell about one process; a [Snapshot] is every process
// of one uid, read in one pass over the /proc directory.
//
// A process that vanishes while it is read is reported with an error that
// wraps [os.ErrNotExist] (one process) or silently left out (a snapshot). A
// zombie is still listed, with State 'Z'; callers treat it as gone (see
// [Process.Zombie]).
//
// The pidfd helpers ([PidfdOpen]) watch and signal a process that is not our
// child.
package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"
)

// ClockTicks is USER_HZ, the unit of the tick fields of /proc/PID/stat. It is
// part of the procfs ABI (100 on every architecture Linux supports with
// procfs times), so no getconf is needed.
const ClockTicks = 100

// FS is a procfs mount point.
type FS struct {
	// Root is the mount point; "" means "/proc".
	Root string
}

// Default returns the FS of the system's /proc.
func Default() FS { return FS{Root: "/proc"} }

func (fs FS) root() string {
	if fs.Root == "" {
		return "/proc"
	}
	return fs.Root
}

func (fs FS) path(pid int, file string) string {
	return fs.root() + "/" + strconv.Itoa(pid) + "/" + file
}

// Process is what /proc tells about one process.
type Process struct {
	// PID and PPID are the process id and its parent's.
	PID, PPID int
	// PGID and SID are the process group and session (fields 5 and 6).
	PGID, SID int
	// UID is the owner of the /proc/PID directory: the effective uid of the
	// process (root for a non-dumpable process). It is the fast uid-first
	// filter of [FS.Snapshot]; [FS.Status] reads the real uid.
	UID int
	// State is field 3 of /proc/PID/stat: 'R', 'S', 'D', 'Z', 'X', ...
	State byte
	// StartTicks is field 22, the start time in clock ticks since boot.
	// PID plus StartTicks identifies a process across pid reuse.
	StartTicks uint64
	// Started is the boot time plus StartTicks. The boot time (btime of
	// <root>/stat) has a one-second resolution, so Started may be up to a
	// second early; compare StartTicks, not Started, for identity.
	Started time.Time
	// UTime and STime are fields 14 and 15, user and system CPU time in ticks.
	UTime, STime uint64
	// Threads is field 20, the process's number of threads (tasks, which
	// RLIMIT_NPROC counts).
	Threads int
	// RSSPages is field 24, the resident set size in pages.
	RSSPages int64
	// ExitCode is field 52, the wait status as waitpid reports it. It is
	// meaningful for a zombie only, and 0 when the kernel does not have it.
	ExitCode int
	// Comm is the command name (field 2, without its parentheses).
	Comm string
	// Args is /proc/PID/cmdline split on NUL, trailing empty strings removed.
	// It is empty for a kernel thread and a zombie.
	Args []string
	// Title is the process title that proctitle_re matches: Args joined by single spaces,
	// trailing spaces and NULs dropped.
	Title string
}

// Zombie reports whether the process has exited but is not reaped yet (state
// 'Z', or 'X' for dead). usrsvc treats such a process as gone everywhere.
func (p *Process) Zombie() bool { return p.State == 'Z' || p.State == 'X' }

// ExitStatus returns ExitCode as a [syscall.WaitStatus], for Exited,
// ExitStatus, Signaled and Signal.
func (p *Process) ExitStatus() syscall.WaitStatus { return syscall.WaitStatus(p.ExitCode) }

// ErrFormat is wrapped by errors about a /proc file that cannot be parsed
// (short, garbled).
var ErrFormat = errors.New("unexpected /proc file format")

// gone reports whether err from reading a /proc/PID file means that the
// process does not exist (any more).
func gone(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH)
}

// exhausted reports whether err says that the reader ran out of a resource
// (open files, memory) rather than that the process is gone or unreadable:
// the process may well exist, it just could not be read now.
func exhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOMEM)
}

// wrapErr gives an error about a file of pid context, and makes sure that an
// error meaning "the process is gone" wraps os.ErrNotExist (ESRCH does not
// by itself).
func wrapErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		err = &fs.PathError{Op: op, Path: path, Err: err}
	}
	if gone(err) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w (%w)", err, os.ErrNotExist)
	}
	return err
}
