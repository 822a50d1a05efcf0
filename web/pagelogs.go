package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/logfile"
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

// tailFile returns the last n lines of path, read from at most
// maxTailBytes before its end (internal/logfile.Tail), and the file's size
// before the read, where following starts (a line appended meanwhile is
// shown twice rather than lost). A missing file has no lines; anything
// but a regular file (a FIFO, a device) is refused, never read.
func tailFile(path string, n int) (lines []string, end int64, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s is not a regular file", path)
	}
	if n <= 0 {
		return nil, fi.Size(), nil
	}
	lines, err = logfile.Tail(path, 0, n, maxTailBytes)
	for i, l := range lines {
		lines[i] = strings.ToValidUTF8(l, "\uFFFD")
	}
	return lines, fi.Size(), err
}

// splitLines splits b into lines without their newline (and CR); a last
// line without a newline counts.
func splitLines(b []byte) []string {
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte("\n"))
	lines := make([]string, len(parts))
	for i, p := range parts {
		lines[i] = string(bytes.ToValidUTF8(bytes.TrimSuffix(p, []byte("\r")), []byte("\uFFFD")))
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
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
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
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
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
