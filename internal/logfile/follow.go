package logfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// FollowOptions tunes [Follow]. The zero value is ready to use.
type FollowOptions struct {
	// Interval between looks at the file; default 250 ms.
	Interval time.Duration
	// MaxBacklog bounds what one look copies: when more than this was
	// appended since the last look, the older part is skipped (Notify is
	// told). Default 1 MiB.
	MaxBacklog int64
	// Flush, when set, is called after each look that wrote something (an
	// http.ResponseWriter's Flush).
	Flush func()
	// Notify, when set, is told what happened to the file besides growth:
	// truncated in place (logrotate copytruncate), replaced by a new file
	// (logrotate create), removed, skipped bytes.
	Notify func(msg string)
	// Moved, when set, is told the offset in the file of what is copied
	// next whenever it is not just after what was copied before: a new
	// file or a truncated one is copied from 0, a skip resumes after the
	// bytes skipped. A writer that keeps offsets (to resume later) follows
	// the file's own with it.
	Moved func(offset int64)
}

// Follow copies to w what is appended to the file at path from byte
// offset from (negative: from the current end), until ctx is done (then it
// returns nil) or w fails. It follows the file across rotation: when the
// path names a new file (logrotate create), the rest of the old file is
// copied, then the new one from its start; when the file shrinks
// (logrotate copytruncate), copying resumes from its start. A missing file
// is waited for.
func Follow(ctx context.Context, path string, from int64, w io.Writer, opts FollowOptions) error {
	f, fi, err := OpenRead(path)
	if err != nil {
		f, fi = nil, nil
	}
	return follow(ctx, path, f, fi, from, w, opts)
}

// follow is Follow starting with f (its file info fi), already open on
// path; f nil: path is opened when it appears. follow closes f.
func follow(ctx context.Context, path string, f *os.File, fi os.FileInfo, from int64, w io.Writer, opts FollowOptions) error {
	if opts.Interval <= 0 {
		opts.Interval = 250 * time.Millisecond
	}
	if opts.MaxBacklog <= 0 {
		opts.MaxBacklog = 1 << 20
	}
	notify := func(format string, args ...any) {
		if opts.Notify != nil {
			opts.Notify(fmt.Sprintf(format, args...))
		}
	}
	fw := &follower{path: path, w: w, opts: opts, notify: notify, buf: make([]byte, 32<<10)}
	defer fw.close()
	if f != nil {
		fw.adopt(f, fi)
		size := fi.Size()
		fw.pos = from
		if from < 0 || from > size {
			fw.pos = size
		}
	} else {
		notify("%s does not exist yet: waiting for it", path)
	}
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	for {
		if err := fw.look(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// TailFollow writes the last n lines of path to w (at most max bytes of
// its end are read, as Tail does; each line ends with a newline), then
// follows the file as Follow does from where those lines end, so nothing
// is lost or repeated in between. A missing file is waited for.
func TailFollow(ctx context.Context, path string, n int, max int64, w io.Writer, opts FollowOptions) error {
	f, fi, err := OpenRead(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return follow(ctx, path, nil, nil, 0, w, opts)
		}
		return err
	}
	size := fi.Size()
	lines, err := tailOf(f, size, 0, n, max)
	// A last line still being written gets no newline: its rest follows.
	last := []byte{'\n'}
	if size > 0 {
		f.ReadAt(last, size-1)
	}
	if err != nil {
		f.Close()
		return err
	}
	for i, l := range lines {
		if i < len(lines)-1 || last[0] == '\n' {
			l += "\n"
		}
		if _, err := io.WriteString(w, l); err != nil {
			return err
		}
	}
	if opts.Flush != nil && len(lines) > 0 {
		opts.Flush()
	}
	// The same open file: a rotation meanwhile is seen as one.
	return follow(ctx, path, f, fi, size, w, opts)
}

type follower struct {
	path   string
	w      io.Writer
	opts   FollowOptions
	notify func(string, ...any)
	f      *os.File
	ino    uint64
	pos    int64
	buf    []byte
	gone   bool // the path was missing at the last look
}

func (fw *follower) open() error {
	f, fi, err := OpenRead(fw.path)
	if err != nil {
		return err
	}
	fw.adopt(f, fi)
	return nil
}

// adopt makes f (with file info fi) the followed file, from its start.
func (fw *follower) adopt(f *os.File, fi os.FileInfo) {
	fw.close()
	fw.f, fw.pos = f, 0
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		fw.ino = st.Ino
	}
}

// moved tells Moved, if set, where copying resumes.
func (fw *follower) moved(offset int64) {
	if fw.opts.Moved != nil {
		fw.opts.Moved(offset)
	}
}

func (fw *follower) close() {
	if fw.f != nil {
		fw.f.Close()
		fw.f = nil
	}
}

func (fw *follower) size() int64 {
	fi, err := fw.f.Stat()
	if err != nil {
		return fw.pos
	}
	return fi.Size()
}

// look copies what was appended, then checks whether the path was rotated.
func (fw *follower) look() error {
	wrote := false
	if fw.f != nil {
		n, err := fw.drain()
		if err != nil {
			return err
		}
		wrote = n > 0
	}
	// Rotation: is the path still our file? (Lstat: a symbolic link put
	// in its place is not followed, and not opened.)
	var st syscall.Stat_t
	err := syscall.Lstat(fw.path, &st)
	switch {
	case err != nil:
		if !fw.gone && fw.f != nil {
			fw.notify("%s was removed: waiting for it to come back", fw.path)
		}
		fw.gone = true
	case fw.f == nil || st.Ino != fw.ino:
		// A new file: the old one was drained above.
		hadFile := fw.f != nil
		if fw.open() == nil {
			if hadFile {
				fw.notify("%s was replaced by a new file (rotated): following the new one", fw.path)
			} else {
				fw.notify("%s appeared: following it", fw.path)
			}
			fw.moved(0)
			fw.gone = false
			n, err := fw.drain()
			if err != nil {
				return err
			}
			wrote = wrote || n > 0
		}
	default:
		fw.gone = false
	}
	if wrote && fw.opts.Flush != nil {
		fw.opts.Flush()
	}
	return nil
}

// drain copies from pos to the current end of the open file.
func (fw *follower) drain() (int64, error) {
	size := fw.size()
	if size < fw.pos {
		fw.notify("%s was truncated: following it from its start", fw.path)
		fw.pos = 0
		fw.moved(0)
	}
	if size-fw.pos > fw.opts.MaxBacklog {
		skip := size - fw.opts.MaxBacklog - fw.pos
		fw.notify("skipped %d bytes of %s (more than %d appended at once)", skip, fw.path, fw.opts.MaxBacklog)
		fw.pos += skip
		fw.moved(fw.pos)
	}
	var total int64
	for fw.pos < size {
		n := min(int64(len(fw.buf)), size-fw.pos)
		k, err := fw.f.ReadAt(fw.buf[:n], fw.pos)
		if k > 0 {
			if _, werr := fw.w.Write(fw.buf[:k]); werr != nil {
				return total, werr
			}
			fw.pos += int64(k)
			total += int64(k)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break // truncated meanwhile: the next look sees it
			}
			return total, err
		}
	}
	return total, nil
}
