// Package logfile is an append-only log file that can be reopened (for
// logrotate: usrsvcd reopens its logs on SIGUSR2).
package logfile

import (
	"os"
	"sync"
	"syscall"
)

// File is an io.Writer over a file opened in append mode. Writes never
// fail the caller: a log that cannot be written must not stop a daemon.
type File struct {
	mu   sync.Mutex
	path string
	f    *os.File
	// Fd2 makes Reopen also point the process's stderr (fd 2) at the file,
	// so runtime crashes land in the log.
	Fd2 bool
}

// Open opens path for appending (created 0600).
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
	f, err := os.OpenFile(lf.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
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

// Write appends p. Errors are swallowed: the daemon goes on.
func (lf *File) Write(p []byte) (int, error) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.f != nil {
		lf.f.Write(p)
	}
	return len(p), nil
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
