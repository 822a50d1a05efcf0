package logfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
)

// Tail returns up to n last lines of the regular file path, among those
// that lie after byte offset (0: the whole file), reading at most max bytes
// from the end of the file: a huge file costs no more than a small one. A
// first line cut by the max bound is dropped, so every line returned is
// whole. Line ends (LF or CRLF) are removed; an empty file, or nothing
// after offset, is nil.
//
// The file is opened non-blocking and must be a regular file: a FIFO or a
// device configured as a log never blocks the caller.
func Tail(path string, offset int64, n int, max int64) ([]string, error) {
	f, fi, err := OpenRead(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return tailOf(f, fi.Size(), offset, n, max)
}

// TailSize is Tail, and the file's size when it was read (from the same
// descriptor): where following it starts.
func TailSize(path string, offset int64, n int, max int64) ([]string, int64, error) {
	f, fi, err := OpenRead(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	lines, err := tailOf(f, fi.Size(), offset, n, max)
	return lines, fi.Size(), err
}

// tailOf is Tail over the first size bytes of the open file f.
func tailOf(f *os.File, size, offset int64, n int, max int64) ([]string, error) {
	if offset < 0 {
		offset = 0
	}
	if n <= 0 || max <= 0 || size <= offset {
		return nil, nil
	}
	start := offset
	cut := false
	if size-start > max {
		// Read one byte more, to know whether start begins a line.
		start, cut = size-max-1, true
	}
	buf := make([]byte, size-start)
	k, err := f.ReadAt(buf, start)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	buf = buf[:k]
	if cut {
		if buf[0] == '\n' {
			buf = buf[1:]
		} else if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		} else {
			buf = nil
		}
	}
	buf = bytes.TrimRight(buf, "\n")
	if len(buf) == 0 {
		return nil, nil
	}
	lines := strings.Split(string(buf), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines, nil
}
