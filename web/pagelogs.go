package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc"
)

// Log tails for the page and the JSON API. A program's log files are found
// by its name in the configuration, never from a path in the request; a
// tail reads at most maxTailBytes from the end of the file, however large.

const (
	// defaultTailLines and maxTailLines bound the lines a tail returns.
	defaultTailLines = 100
	maxTailLines     = 5000
	// maxTailBytes bounds what a tail reads from the end of a file.
	maxTailBytes = 256 << 10
	// followInterval is how often a followed log is checked for new lines.
	followInterval = 500 * time.Millisecond
	// maxFollowChunk bounds one read of new lines.
	maxFollowChunk = 256 << 10
)

// Stream names.
const (
	streamStdout = "stdout"
	streamStderr = "stderr"
)

// logPath returns the file of the named program's stream ("stdout" or
// "stderr"), and whether stderr goes to the stdout file.
func logPath(pc *usrsvc.ProgramConfig, stream string) (path string, same bool, err error) {
	switch stream {
	case streamStdout:
		return pc.Stdout, false, nil
	case streamStderr:
		return pc.Stderr, pc.Stderr == pc.Stdout, nil
	}
	return "", false, fmt.Errorf("unknown log stream %q: use stdout or stderr", stream)
}

// tailFile returns the last n complete lines of path, read from at most
// maxTailBytes before its end, and the file's size (where following
// starts). A missing file has no lines.
func tailFile(path string, n int) (lines []string, end int64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	end = fi.Size()
	start := max(0, end-maxTailBytes)
	buf := make([]byte, end-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, err
	}
	if start > 0 { // the first line is cut: drop it
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	lines = splitLines(buf)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, end, nil
}

// splitLines splits b into lines without their newline; a last line
// without one counts.
func splitLines(b []byte) []string {
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte("\n"))
	lines := make([]string, len(parts))
	for i, p := range parts {
		lines[i] = string(bytes.ToValidUTF8(p, []byte("\uFFFD")))
	}
	return lines
}

// followFile calls emit with the complete lines appended to path after
// offset, and the offset just after them, until ctx ends or emit fails. A rotated file (renamed and
// created anew, or truncated in place) is followed from the start of the
// new content.
func followFile(ctx context.Context, path string, offset int64, emit func(lines []string, next int64) error) error {
	var ino uint64
	if fi, err := os.Stat(path); err == nil {
		ino = inode(fi)
	}
	var partial []byte
	tick := time.NewTicker(followInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue // rotated away: the new file comes
		}
		if i := inode(fi); i != ino || fi.Size() < offset {
			ino, offset, partial = i, 0, nil // a new file, or truncated
		}
		if fi.Size() == offset {
			continue
		}
		chunk, err := readAt(path, offset, min(fi.Size()-offset, maxFollowChunk))
		if err != nil {
			continue
		}
		offset += int64(len(chunk))
		data := append(partial, chunk...)
		cut := bytes.LastIndexByte(data, '\n')
		if cut < 0 {
			partial = data
			continue
		}
		partial = append([]byte(nil), data[cut+1:]...)
		if err := emit(splitLines(data[:cut+1]), offset-int64(len(partial))); err != nil {
			return err
		}
	}
}

func readAt(path string, off, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:m], nil
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
