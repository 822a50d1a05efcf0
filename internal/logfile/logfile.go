// Package logfile is an append-only log file that can be reopened (for
// logrotate: usrsvcd reopens its logs on SIGUSR2).
package logfile

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// File is an io.Writer over a file opened in append mode. Writes never
// fail the caller: a log that cannot be written must not stop a daemon.
//
// Lines that could not be written (a full disk) are counted, and the first
// write that succeeds again is preceded by a line saying how many were
// lost and why, so a reader sees the gap instead of a silent hole; a line
// cut short by the failure is ended first, so the next one starts on a
// line of its own.
type File struct {
	mu   sync.Mutex
	path string
	f    *os.File
	// Fd2 makes Reopen also point the process's stderr (fd 2) at the file,
	// so runtime crashes land in the log.
	Fd2 bool
	// Lost formats the line that reports n lost lines and the last error;
	// nil writes a plain "TIME usrsvc: N log lines lost (ERROR)" line. Set
	// it before the first Write.
	Lost func(n int, err error) []byte

	lost    int   // lines not written since the last good write
	lostErr error // why the last of them was not written
	partial bool  // a failed write left a line unfinished
}

// Open opens path for appending (created 0600), never through a symbolic
// link.
func Open(path string) (*File, error) {
	lf := &File{path: path}
	if err := lf.Reopen(); err != nil {
		return nil, err
	}
	return lf, nil
}

// Path is the file's path.
func (lf *File) Path() string { return lf.path }

// Reopen closes and reopens the file by its path.
func (lf *File) Reopen() error {
	f, err := os.OpenFile(lf.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return linkError(lf.path, err)
	}
	lf.mu.Lock()
	old := lf.f
	lf.f = f
	if lf.Fd2 {
		syscall.Dup3(int(f.Fd()), 2, 0)
	}
	lf.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Write appends p. Errors are swallowed (the daemon goes on) but counted:
// see [File].
func (lf *File) Write(p []byte) (int, error) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.f == nil {
		return len(p), nil
	}
	if lf.lost > 0 {
		var note []byte
		if lf.partial {
			note = []byte("\n")
		}
		note = append(note, lf.lostLine()...)
		if !lf.write(note) {
			lf.lost++
			return len(p), nil
		}
		lf.lost, lf.lostErr = 0, nil
	}
	if !lf.write(p) {
		lf.lost++
	}
	return len(p), nil
}

// write writes b whole, or records why not.
func (lf *File) write(b []byte) bool {
	n, err := lf.f.Write(b)
	if err == nil {
		lf.partial = false
		return true
	}
	if n > 0 {
		lf.partial = true
	}
	lf.lostErr = err
	return false
}

func (lf *File) lostLine() []byte {
	err := lf.lostErr
	if pe, ok := err.(*os.PathError); ok {
		err = pe.Err
	}
	if lf.Lost != nil {
		return lf.Lost(lf.lost, err)
	}
	return []byte(fmt.Sprintf("%s usrsvc: %d log lines lost (%v)\n", time.Now().Format(time.RFC3339), lf.lost, err))
}

// Close closes the file.
func (lf *File) Close() error {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.f == nil {
		return nil
	}
	err := lf.f.Close()
	lf.f = nil
	return err
}
