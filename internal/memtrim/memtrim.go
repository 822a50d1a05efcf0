// Package memtrim gives back the memory a long-running, mostly idle process
// (usrsvcd) no longer uses after a burst of work: the garbage of its heap,
// and its mappings of the code and read-only data it ran once (config
// parsing, start-up).
//
// A process's resident set counts every page of its executable it has
// mapped, and a page fault maps 64 kB of an executable already in the page
// cache at once, so a Go daemon soon has most of its binary resident
// (about 4 MB for usrsvcd) while its idle loop uses a small part of it.
// [Trim] drops those mappings with madvise(MADV_DONTNEED): the pages stay in
// the page cache (shared with every other process running the binary) and
// come back, mapped again by a minor fault, when code runs.
package memtrim

import (
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// Trim returns the heap's free memory to the system (a GC, then every free
// page released) and unmaps this process's read-only mappings of its own
// executable (code and constants; never a writable mapping, nor a read-only
// one holding pages that differ from the file, whose private copies
// MADV_DONTNEED would discard). It returns how many bytes of mappings
// it dropped, and the first error (the trim is best effort: a failure
// changes nothing but the memory figures).
func Trim() (int, error) {
	debug.FreeOSMemory()
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	ms, err := proc.Default().Mappings(0)
	if err != nil {
		return 0, err
	}
	var dropped int
	var first error
	for _, m := range ms {
		// A binary replaced by an upgrade shows as "PATH (deleted)".
		if strings.TrimSuffix(m.Path, " (deleted)") != exe || (m.Perms != "r-xp" && m.Perms != "r--p") {
			continue
		}
		if m.AnonKB > 0 {
			// Pages that differ from the file: in a position-independent
			// executable (-buildmode=pie, as distributions build), the
			// read-only data relocated at load time. MADV_DONTNEED would
			// bring back the file's unrelocated bytes and crash the process.
			continue
		}
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, m.Start, m.End-m.Start, unix.MADV_DONTNEED)
		if errno != 0 && first == nil {
			first = errno
			continue
		}
		dropped += int(m.End - m.Start)
	}
	return dropped, first
}

// Idle runs [Trim] once the process has been quiet for a while: every
// [Idle.Poke] (an event, a reread) restarts the wait, so a burst of work is
// followed by one trim, and no timer runs while nothing happens.
type Idle struct {
	quiet  time.Duration
	report func(dropped int, err error)
	mu     sync.Mutex
	timer  *time.Timer
}

// NewIdle returns an Idle that trims after quiet without a Poke, and calls
// report (may be nil) with each trim's outcome.
func NewIdle(quiet time.Duration, report func(dropped int, err error)) *Idle {
	return &Idle{quiet: quiet, report: report}
}

// Poke says the process just worked: the trim comes quiet from now. It is
// safe for concurrent use and does not block.
func (i *Idle) Poke() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.timer == nil {
		i.timer = time.AfterFunc(i.quiet, i.trim)
		return
	}
	i.timer.Reset(i.quiet)
}

// Stop cancels a pending trim.
func (i *Idle) Stop() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.timer != nil {
		i.timer.Stop()
	}
}

func (i *Idle) trim() {
	dropped, err := Trim()
	if i.report != nil {
		i.report(dropped, err)
	}
}
