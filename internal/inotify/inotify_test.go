package inotify

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWatcherReportsChanges(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	w, err := New(Changes, a, b)
	require.NoError(t, err)
	defer w.Close()

	got := make(chan Event, 16)
	go func() {
		for {
			evs, err := w.Read()
			if err != nil {
				close(got)
				return
			}
			for _, ev := range evs {
				got <- ev
			}
		}
	}()
	// An atomic replace: write a temporary file, rename it into place.
	tmp := filepath.Join(b, ".x.tmp")
	require.NoError(t, os.WriteFile(tmp, []byte("1"), 0o600))
	require.NoError(t, os.Rename(tmp, filepath.Join(b, "x.json")))
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-got:
			if ev.Name == "x.json" {
				assert.Equal(t, b, ev.Dir)
				require.NoError(t, w.Close())
				for range got { // Close ends Read
				}
				return
			}
		case <-deadline:
			t.Fatal("no event for the renamed file")
		}
	}
}

func TestCloseWakesRead(t *testing.T) {
	t.Parallel()
	w, err := New(Changes, t.TempDir())
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { _, err := w.Read(); done <- err }()
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, w.Close())
	select {
	case err := <-done:
		assert.True(t, errors.Is(err, os.ErrClosed), "got %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
}

func TestNewFailsOnMissingDirectory(t *testing.T) {
	t.Parallel()
	_, err := New(Changes, filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
}
