package logfile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// startFollow runs Follow in the background; stop ends it and returns its error.
func startFollow(t *testing.T, path string, from int64, opts FollowOptions) (out *testproc.Buffer, notes *testproc.Buffer, stop func() error) {
	t.Helper()
	out, notes = &testproc.Buffer{}, &testproc.Buffer{}
	opts.Interval = 5 * time.Millisecond
	opts.Notify = func(m string) { notes.Write([]byte(m + "\n")) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Follow(ctx, path, from, out, opts) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Follow did not return after its context ended")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return out, notes, stop
}

func waitContent(t *testing.T, b *testproc.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("waited for %q, have %q", want, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFollowAppendAndRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	appendFile(t, path, "old line\n")
	out, notes, stop := startFollow(t, path, int64(len("old line\n")), FollowOptions{})
	appendFile(t, path, "one\n")
	waitContent(t, out, "one\n")
	assert.NotContains(t, out.String(), "old line", "from the offset")

	// logrotate copytruncate: the file is cut to 0 in place.
	require.NoError(t, os.Truncate(path, 0))
	waitContent(t, notes, "truncated")
	appendFile(t, path, "two\n")
	waitContent(t, out, "two\n")

	// logrotate create: renamed away, a new file at the path.
	require.NoError(t, os.Rename(path, path+".1"))
	appendFile(t, path+".1", "three (late write to the old file)\n")
	waitContent(t, out, "three (late write to the old file)\n")
	appendFile(t, path, "four\n")
	waitContent(t, out, "four\n")
	waitContent(t, notes, "replaced by a new file")
	require.NoError(t, stop())
	assert.Equal(t, "one\ntwo\nthree (late write to the old file)\nfour\n", out.String())
}

func TestFollowFromOffsetAndMissingFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "later.log")
	out, notes, stop := startFollow(t, path, 0, FollowOptions{})
	waitContent(t, notes, "does not exist yet")
	appendFile(t, path, "first\n")
	waitContent(t, out, "first\n")
	require.NoError(t, stop())

	appendFile(t, path, "second\n")
	out, _, stop = startFollow(t, path, 6, FollowOptions{})
	waitContent(t, out, "second\n")
	require.NoError(t, stop())
	assert.Equal(t, "second\n", out.String())
}

func TestFollowBoundsBacklog(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "big.log")
	appendFile(t, path, "")
	out, notes, stop := startFollow(t, path, 0, FollowOptions{MaxBacklog: 1000})
	appendFile(t, path, strings.Repeat("x", 5000)+"END\n")
	waitContent(t, out, "END\n")
	require.NoError(t, stop())
	assert.LessOrEqual(t, len(out.String()), 1000)
	assert.Contains(t, notes.String(), "skipped")
}

func TestReadRange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "r.log")
	appendFile(t, path, "0123456789")
	b, size, err := ReadRange(path, 2, 3)
	require.NoError(t, err)
	assert.Equal(t, "234", string(b))
	assert.Equal(t, int64(10), size)
	b, _, err = ReadRange(path, 8, 100)
	require.NoError(t, err)
	assert.Equal(t, "89", string(b))
	b, _, err = ReadRange(path, 20, 5)
	require.NoError(t, err)
	assert.Empty(t, b)
	_, _, err = ReadRange(dir, 0, 5)
	assert.ErrorContains(t, err, "not a regular file")
	_, _, err = ReadRange(filepath.Join(dir, "missing"), 0, 5)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestTailFollow(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "t.log")
	appendFile(t, path, "a\nb\nc\nd\npart")
	out := &testproc.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- TailFollow(ctx, path, 2, 1<<20, out, FollowOptions{Interval: 5 * time.Millisecond}) }()
	waitContent(t, out, "d\npart")
	appendFile(t, path, "ial\ne\n")
	waitContent(t, out, "e\n")
	cancel()
	require.NoError(t, <-done)
	assert.Equal(t, "d\npartial\ne\n", out.String())
}

// Moved tells where copying resumes when it is not after what was copied:
// a writer keeping offsets stays right across rotation, truncation, a skip
// and a file that appears.
func TestFollowMoved(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	var mu sync.Mutex
	var moves []int64
	out, notes, stop := startFollow(t, path, 0, FollowOptions{MaxBacklog: 100, Moved: func(off int64) {
		mu.Lock()
		moves = append(moves, off)
		mu.Unlock()
	}})
	waitContent(t, notes, "does not exist yet")
	appendFile(t, path, "appeared\n")
	waitContent(t, out, "appeared\n")
	require.NoError(t, os.Truncate(path, 0))
	waitContent(t, notes, "truncated")
	appendFile(t, path, "cut\n")
	waitContent(t, out, "cut\n")
	require.NoError(t, os.Rename(path, path+".1"))
	appendFile(t, path, "new\n")
	waitContent(t, out, "new\n")
	appendFile(t, path, strings.Repeat("x", 300)+"\n")
	waitContent(t, out, "x\n")
	require.NoError(t, stop())
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []int64{0, 0, 0, 4 + 301 - 100}, moves, "appeared, truncated, replaced, skipped: %s", notes.String())
}
