package logfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// OpenRead opens a log file for reading: non-blocking and only if it is a
// regular file, so a FIFO or a device configured as a log never blocks the
// reader; never through a symbolic link (O_NOFOLLOW: a log replaced by a
// link to another file of the account is refused, not read). What is read
// is then read from the descriptor, and its file info is the
// descriptor's.
func OpenRead(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, linkError(path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	return f, fi, nil
}

// ReadRange returns at most n bytes of path from offset off (less at the
// end of the file), and the file's size. off past the end reads nothing.
func ReadRange(path string, off, n int64) ([]byte, int64, error) {
	f, fi, err := OpenRead(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	return readAt(f, off, n, fi.Size())
}

// readAt reads at most n bytes of f (of size size) from off.
func readAt(f *os.File, off, n, size int64) ([]byte, int64, error) {
	if off < 0 {
		off = 0
	}
	if off >= size || n <= 0 {
		return nil, size, nil
	}
	if n > size-off {
		n = size - off
	}
	buf := make([]byte, n)
	k, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, size, err
	}
	return buf[:k], size, nil
}

// ErrSymlink is wrapped by the errors of a log path that is a symbolic
// link, which is never followed.
var ErrSymlink = errors.New("a symbolic link, which usrsvc never follows for a log: remove it (the program's log is created again at its next start)")

// linkError words ELOOP from an O_NOFOLLOW open.
func linkError(path string, err error) error {
	if errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("%s is %w", path, ErrSymlink)
	}
	return err
}

// OpenWrite opens a log file for writing in place (to truncate it), never
// through a symbolic link, never blocking, never creating it; it must be a
// regular file.
func OpenWrite(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, linkError(path, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadEnd returns at most n bytes of the end of path, and its size, from
// one open descriptor.
func ReadEnd(path string, n int64) ([]byte, int64, error) {
	f, fi, err := OpenRead(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	size := fi.Size()
	return readAt(f, max(size-n, 0), n, size)
}
