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
// reader.
func OpenRead(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
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
	size := fi.Size()
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
