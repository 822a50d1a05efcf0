package usrsvc

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestTailLog(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.addProgram("p", "/bin/sleep 1000", "stderr = "+e.path("p.err"))
	m := e.manager()
	require.NoError(t, os.WriteFile(e.path("p.log"), []byte("one\ntwo\nthree\n"), 0o600))

	lines, err := m.TailLog("p", Stdout, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"two", "three"}, lines)
	_, err = m.TailLog("p", Stderr, 2)
	assert.ErrorIs(t, err, ErrPermission)
	assert.ErrorContains(t, err, "p has no stderr file yet")
	_, err = m.TailLog("nope", Stdout, 2)
	assert.ErrorIs(t, err, ErrUndefined)
	_, err = m.LogFile("p", Stream("../../etc/passwd"))
	assert.ErrorIs(t, err, ErrInvalidAction)
	path, err := m.LogFile("p", Stderr)
	require.NoError(t, err)
	assert.Equal(t, e.path("p.err"), path)
}

func TestFollowLog(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.addProgram("p", "/bin/sleep 1000")
	m := e.manager()
	require.NoError(t, os.WriteFile(e.path("p.log"), []byte("one\ntwo\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	out := &testproc.Buffer{}
	done := make(chan error, 1)
	go func() { done <- m.FollowLog(ctx, "p", Stdout, 1, out, nil) }()
	waitFor(t, 10*time.Second, func() bool { return out.String() == "two\n" }, "the last line first")
	// logrotate create: the file is renamed away and a new one created.
	require.NoError(t, os.Rename(e.path("p.log"), e.path("p.log.1")))
	require.NoError(t, os.WriteFile(e.path("p.log"), []byte("three\n"), 0o600))
	waitFor(t, 10*time.Second, func() bool { return out.String() == "two\nthree\n" }, "the new file followed")
	cancel()
	require.NoError(t, <-done)

	// A failing writer ends it with the writer's error.
	boom := errors.New("boom")
	err := m.FollowLog(context.Background(), "p", Stdout, 1, failWriter{boom}, nil)
	assert.ErrorIs(t, err, boom)
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }
