package logfile

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/errs"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestProgramTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "p.log")
	require.NoError(t, os.WriteFile(log, []byte("one\ntwo\nthree\n"), 0o600))

	lines, err := ProgramTail("p", "stdout", log, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"two", "three"}, lines)

	_, err = ProgramTail("p", "stderr", filepath.Join(dir, "p.err"), 2)
	assert.ErrorIs(t, err, errs.Failed)
	assert.ErrorIs(t, err, fs.ErrNotExist, "the cause stays in the chain")
	assert.ErrorContains(t, err, "p has no stderr file yet")

	require.NoError(t, os.Mkdir(filepath.Join(dir, "d"), 0o700))
	_, err = ProgramTail("p", "stdout", filepath.Join(dir, "d"), 2)
	assert.ErrorIs(t, err, errs.Permission, "a directory is not a log file")
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestProgramFollow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "p.log")
	require.NoError(t, os.WriteFile(log, []byte("one\ntwo\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	out := &testproc.Buffer{}
	done := make(chan error, 1)
	go func() { done <- ProgramFollow(ctx, "p", "stdout", log, 1, out, nil) }()
	require.Eventually(t, func() bool { return out.String() == "two\n" }, 10*time.Second, 5*time.Millisecond, "the last line first")
	// logrotate create: the file is renamed away and a new one created.
	require.NoError(t, os.Rename(log, log+".1"))
	require.NoError(t, os.WriteFile(log, []byte("three\n"), 0o600))
	require.Eventually(t, func() bool { return out.String() == "two\nthree\n" }, 10*time.Second, 5*time.Millisecond, "the new file followed")
	cancel()
	require.NoError(t, <-done)

	// A failing writer ends it with the writer's error.
	boom := errors.New("boom")
	err := ProgramFollow(context.Background(), "p", "stdout", log, 1, failWriter{boom}, nil)
	assert.ErrorIs(t, err, boom)
}
