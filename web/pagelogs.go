package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/logfile"
)

// Log tails for the page and the JSON API. A program's log files are found
// by its name in the configuration, never from a path in the request; a
// tail reads at most logfile.MaxTail bytes from the end of the file, however
// large (the bound usrsvc tail uses too).

const (
	// defaultTailLines and maxTailLines bound the lines a tail returns.
	defaultTailLines = 100
	maxTailLines     = 5000
	// followInterval is how often a followed log is checked for new lines.
	followInterval = 500 * time.Millisecond
	// maxFollowChunk bounds what one look at a followed log sends: more
	// appended at once is skipped.
	maxFollowChunk = 256 << 10
)

// Stream names.
const (
	streamStdout = "stdout"
	streamStderr = "stderr"
)

// logPath returns the file of the named program's stream ("stdout" or
// "stderr"), and whether stderr goes to the stdout file.
func logPath(pc *usrsvc.Program, stream string) (path string, same bool, err error) {
	switch stream {
	case streamStdout:
		return pc.Stdout, false, nil
	case streamStderr:
		return pc.Stderr, pc.Stderr == pc.Stdout, nil
	}
	return "", false, fmt.Errorf("unknown log stream %q: use stdout or stderr", stream)
}

// tailFile returns the last n lines of path, read from at most
// logfile.MaxTail bytes before its end (internal/logfile.Tail), and the file's size
// before the read, where following starts (a line appended meanwhile is
// shown twice rather than lost). A missing file has no lines; anything
// but a regular file (a FIFO, a device, a symbolic link) is refused, never
// read; the size is the descriptor's that was read.
func tailFile(path string, n int) (lines []string, end int64, err error) {
	lines, end, err = logfile.TailSize(path, 0, max(n, 0), logfile.MaxTail)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	for i, l := range lines {
		lines[i] = strings.ToValidUTF8(l, "\uFFFD")
	}
	return lines, end, nil
}

// An offset in an event id: "-" when it is not known (after a rotation),
// which a reconnecting browser's Last-Event-ID turns into "from the end".
func offsetID(off int64) string {
	if off < 0 {
		return "-"
	}
	return strconv.FormatInt(off, 10)
}

// parseOffset reads an offset of a request: "" is none (ok false), "-" is
// the end (-1).
func parseOffset(s string) (off int64, ok bool, err error) {
	switch s {
	case "":
		return -1, false, nil
	case "-":
		return -1, true, nil
	}
	off, err = strconv.ParseInt(s, 10, 64)
	if err != nil || off < 0 {
		return -1, false, fmt.Errorf("offset %q: give a byte offset ≥ 0", s)
	}
	return off, true, nil
}

// followFile calls emit with the complete lines appended to path after
// offset, and the offset in the file just after them, until ctx ends or
// emit fails. It is the library's follower (internal/logfile.Follow):
// across logrotate's create (the rest of the old file, then the new one)
// and copytruncate (from the start again); the offsets follow the file's.
func followFile(ctx context.Context, path string, offset int64, emit func(lines []string, next int64) error) error {
	if fi, err := os.Stat(path); err == nil && offset > fi.Size() {
		offset = fi.Size() // an offset from before a truncation: from the end
	}
	lw := &lineWriter{pos: offset, emit: emit}
	err := logfile.Follow(ctx, path, offset, lw, logfile.FollowOptions{Interval: followInterval,
		MaxBacklog: maxFollowChunk, Moved: lw.moved})
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// lineWriter cuts what the follower copies into complete lines. A line
// longer than maxLineBytes (a program writing without newlines) is sent
// cut, marked, in pieces of that size: the partial line kept between
// writes is bounded, and each byte is scanned once.
type lineWriter struct {
	pos     int64 // the offset in the file after what was written
	partial []byte
	emit    func(lines []string, next int64) error
}

// maxLineBytes bounds a line of a followed log; longer ones are cut.
const maxLineBytes = 64 << 10

// cutMark ends a piece of a line cut at maxLineBytes.
const cutMark = " …[cut: line longer than 64 KiB]"

// moved: the follower goes on elsewhere (a new file, a truncation, a
// skip); a line cut there is not joined to what comes.
func (lw *lineWriter) moved(offset int64) {
	lw.pos, lw.partial = offset, lw.partial[:0]
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	lw.pos += int64(n)
	var lines []string
	for len(p) > 0 {
		seg, rest, nl := bytes.Cut(p, []byte("\n"))
		room := maxLineBytes - len(lw.partial)
		if len(seg) > room {
			lw.partial = append(lw.partial, seg[:room]...)
			lines = append(lines, lineText(lw.partial)+cutMark)
			lw.partial = lw.partial[:0]
			p = p[room:]
			continue
		}
		lw.partial = append(lw.partial, seg...)
		if !nl {
			break
		}
		lines = append(lines, lineText(lw.partial))
		lw.partial = lw.partial[:0]
		p = rest
	}
	if len(lines) > 0 {
		if err := lw.emit(lines, lw.pos-int64(len(lw.partial))); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// lineText is a line as shown: without its CR, valid UTF-8.
func lineText(b []byte) string {
	return string(bytes.ToValidUTF8(bytes.TrimSuffix(b, []byte("\r")), []byte("\uFFFD")))
}
