package logfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/usrsvc/usrsvc/internal/errs"
)

// MaxTail bounds how much of the end of a log file is read for its last
// lines (usrsvc tail, usrsvcweb's log views): a 1 GB log costs no more
// than a small one.
const MaxTail = 1 << 20

// ProgramTail returns the last n lines of a program's log file (its
// stream, "stdout" or "stderr", at path), reading at most MaxTail bytes
// from its end; a line cut by that bound is left out.
func ProgramTail(program, stream, path string, n int) ([]string, error) {
	lines, err := Tail(path, 0, n, MaxTail)
	if err != nil {
		return nil, programError(program, stream, path, err)
	}
	return lines, nil
}

// ProgramFollow writes the last n lines of a program's log file to w,
// then what the program appends to it, until ctx is done (it returns nil
// then) or a write to w fails (it returns that error). It follows the file
// across rotation (see TailFollow); a missing file is waited for. notify,
// when set, is told of rotations, truncations and skipped bytes.
func ProgramFollow(ctx context.Context, program, stream, path string, n int, w io.Writer, notify func(string)) error {
	ew := &errWriter{w: w}
	err := TailFollow(ctx, path, n, MaxTail, ew, FollowOptions{Notify: notify})
	switch {
	case err == nil:
		return nil
	case ew.err != nil && errors.Is(err, ew.err):
		return err // the writer's own error
	}
	return programError(program, stream, path, err)
}

// errWriter remembers the error of its writer.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// programError says why a program's log file cannot be read, keeping the
// cause in the chain: a file not created yet wraps errs.Failed and
// fs.ErrNotExist; any other failure is errs.File's (errs.Permission, or
// errs.Resource when the process ran out of open files).
func programError(program, stream, path string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s has no %s file yet (%s): it is created when the program starts: %w",
			errs.Failed, program, stream, path, err)
	}
	return errs.File(fmt.Sprintf("reading the %s file of %s", stream, program), err)
}
