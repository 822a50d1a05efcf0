package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/usrsvc/usrsvc/internal/logfile"
)

// Stream names one of a program's two output files.
type Stream string

// The streams of a program.
const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// MaxTailBytes bounds how much of the end of a log file [Manager.TailLog]
// and [Manager.FollowLog] read for their last lines: a 1 GB log costs no
// more than a small one.
const MaxTailBytes = 1 << 20

// LogFile returns the file the named program's stream is appended to, as
// configured (stdout, or stderr, which may be the same file). Program
// names are looked up in the configuration, never used as paths.
func (m *Manager) LogFile(name string, s Stream) (string, error) {
	pc, err := m.program(name)
	if err != nil {
		return "", &ProgramError{Program: name, Op: ActionTail, Err: err}
	}
	switch s {
	case Stdout:
		return pc.Stdout, nil
	case Stderr:
		return pc.Stderr, nil
	}
	return "", &ProgramError{Program: name, Op: ActionTail,
		Err: fmt.Errorf("%w: unknown stream %q (use stdout or stderr)", ErrInvalidAction, s)}
}

// TailLog returns the last n lines of the named program's stream file
// (line ends removed), reading at most MaxTailBytes from its end; a line
// cut by that bound is left out. A file that does not exist yet (the
// program never wrote) is ErrPermission, like one that cannot be read.
func (m *Manager) TailLog(name string, s Stream, n int) ([]string, error) {
	path, err := m.LogFile(name, s)
	if err != nil {
		return nil, err
	}
	lines, err := logfile.Tail(path, 0, n, MaxTailBytes)
	if err != nil {
		return nil, logReadError(name, s, path, err)
	}
	return lines, nil
}

// FollowLog writes the last n lines of the named program's stream file to
// w, then what the program appends to it, until ctx is done (it returns
// nil then) or a write to w fails. It follows the file across rotation:
// logrotate's create (the file renamed, a new one created: the rest of the
// old one is read, then the new one) and copytruncate (the file truncated
// in place: read again from its start). A missing file is waited for.
// notify, when set, is told of rotations, truncations and of the bytes
// skipped when more than 1 MiB was appended between two looks (four a
// second).
func (m *Manager) FollowLog(ctx context.Context, name string, s Stream, n int, w io.Writer, notify func(string)) error {
	path, err := m.LogFile(name, s)
	if err != nil {
		return err
	}
	ew := &errWriter{w: w}
	err = logfile.TailFollow(ctx, path, n, MaxTailBytes, ew, logfile.FollowOptions{Notify: notify})
	switch {
	case err == nil:
		return nil
	case ew.err != nil && errors.Is(err, ew.err):
		return err // the writer's own error
	}
	return logReadError(name, s, path, err)
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

func logReadError(name string, s Stream, path string, err error) error {
	msg := fmt.Sprintf("cannot read the %s file %s: %v", s, path, err)
	if errors.Is(err, os.ErrNotExist) {
		msg = fmt.Sprintf("%s has no %s file yet (%s): it is created when the program starts", name, s, path)
	}
	return &ProgramError{Program: name, Op: ActionTail, Err: fmt.Errorf("%w: %s", ErrPermission, msg)}
}
