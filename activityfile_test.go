package usrsvc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// Every test below sets mtimes relative to a fixed "now" and injects it.
var afNow = time.Date(2026, 3, 8, 22, 0, 0, 0, time.UTC)

func setMtime(t *testing.T, path string, mt time.Time) {
	t.Helper()
	require.NoError(t, os.Chtimes(path, mt, mt))
}

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestActivityFileName(t *testing.T) {
	t.Parallel()
	var m Monitor = activityFile{}
	assert.Equal(t, "activityfile", m.Name())
	m = &activityFile{}
	assert.Equal(t, "activityfile", m.Name())
}

func TestActivityFileFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "alive")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	started := afNow.Add(-time.Hour)
	p := Process{PID: 1, Started: started}

	setMtime(t, path, afNow.Add(-59*time.Second))
	a := activityFile{Path: path, Limit: time.Minute, Now: fixedNow(afNow)}
	assert.NoError(t, a.Check(context.Background(), p))

	setMtime(t, path, afNow.Add(-93*time.Second))
	err := a.Check(context.Background(), p)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrMonitorUnavailable)
	assert.EqualError(t, err, "activity file "+path+" last modified 93 s ago, limit 60 s")

	// A future mtime (clock skew) is activity.
	setMtime(t, path, afNow.Add(time.Hour))
	assert.NoError(t, a.Check(context.Background(), p))
}

func TestActivityFileDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inner := filepath.Join(dir, "inner.log")
	sub := filepath.Join(dir, "sub")
	deep := filepath.Join(sub, "deep.log")
	require.NoError(t, os.WriteFile(inner, nil, 0o600))
	require.NoError(t, os.Mkdir(sub, 0o700))
	require.NoError(t, os.WriteFile(deep, nil, 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(deep, link))
	old := afNow.Add(-time.Hour)
	for _, p := range []string{inner, sub, deep, dir} {
		setMtime(t, p, old)
	}
	tv := unix.NsecToTimeval(old.UnixNano())
	require.NoError(t, unix.Lutimes(link, []unix.Timeval{tv, tv})) // the link's own mtime
	p := Process{PID: 1, Started: afNow.Add(-2 * time.Hour)}
	a := activityFile{Path: dir, Limit: time.Minute, Now: fixedNow(afNow)}

	err := a.Check(context.Background(), p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "last modified 3600 s ago, limit 60 s")

	// Not recursive: a fresh file in a subdirectory does not count (nor
	// does the target of a symbolic link).
	setMtime(t, deep, afNow)
	assert.Error(t, a.Check(context.Background(), p))

	// A direct entry counts.
	setMtime(t, inner, afNow.Add(-10*time.Second))
	assert.NoError(t, a.Check(context.Background(), p))

	// The directory's own mtime counts.
	setMtime(t, inner, old)
	setMtime(t, dir, afNow.Add(-10*time.Second))
	assert.NoError(t, a.Check(context.Background(), p))
}

// TestActivityFileDirectoryChurn: entries vanishing while the directory is
// read are fine.
func TestActivityFileDirectoryChurn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			p := filepath.Join(dir, fmt.Sprintf("f%d", i%500))
			if f, err := os.Create(p); err == nil {
				f.Close()
			}
			_ = os.Remove(filepath.Join(dir, fmt.Sprintf("f%d", (i+250)%500)))
		}
	})
	a := activityFile{Path: dir, Limit: time.Hour}
	p := Process{PID: 1, Started: time.Now()}
	for range 300 {
		require.NoError(t, a.Check(context.Background(), p))
	}
	cancel()
	wg.Wait()
}

func TestActivityFileMissing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "never-created")
	a := activityFile{Path: path, Limit: time.Minute, Now: fixedNow(afNow)}

	err := a.Check(context.Background(), Process{PID: 1, Started: afNow.Add(-93 * time.Second)})
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrMonitorUnavailable)
	assert.EqualError(t, err, "activity file "+path+" does not exist (the process started 93 s ago, limit 60 s)")

	// Unknown start time: missing is stale at once.
	err = a.Check(context.Background(), Process{PID: 1})
	assert.EqualError(t, err, "activity file "+path+" does not exist")

	// A program that just started has until Limit to create it.
	assert.NoError(t, a.Check(context.Background(), Process{PID: 1, Started: afNow.Add(-time.Second)}))
}

// TestActivityFileNotOlderThanStart: a file older than the process counts
// from the process's start, so monitor_after = 0 cannot restart a program
// that just started.
func TestActivityFileNotOlderThanStart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "alive")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	setMtime(t, path, afNow.Add(-24*time.Hour))
	started := afNow.Add(-10 * time.Second)
	p := Process{PID: 1, Started: started}

	a := activityFile{Path: path, Limit: time.Minute, Now: fixedNow(afNow)}
	assert.NoError(t, a.Check(context.Background(), p))

	a.Now = fixedNow(started.Add(61 * time.Second))
	err := a.Check(context.Background(), p)
	require.Error(t, err)
	assert.EqualError(t, err, "activity file "+path+" not modified since the process started 61 s ago, limit 60 s")
}

func TestActivityFileUnavailable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	loop := filepath.Join(dir, "loop")
	require.NoError(t, os.Symlink(loop, loop))
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	p := Process{PID: 1, Started: afNow.Add(-time.Hour)}

	for name, a := range map[string]activityFile{
		"symlink loop":     {Path: loop, Limit: time.Minute},
		"not a directory":  {Path: filepath.Join(file, "x"), Limit: time.Minute},
		"no limit":         {Path: file},
		"relative garbage": {Path: string([]byte{0}), Limit: time.Minute},
	} {
		err := a.Check(context.Background(), p)
		assert.ErrorIs(t, err, ErrMonitorUnavailable, name)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, activityFile{Path: file, Limit: time.Minute}.Check(ctx, p), ErrMonitorUnavailable)
}

func TestActivityFilePermissionDenied(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root bypasses file permissions")
	}
	dir := filepath.Join(t.TempDir(), "locked")
	require.NoError(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "alive")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	require.NoError(t, os.Chmod(dir, 0))
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })

	err := activityFile{Path: path, Limit: time.Minute}.Check(context.Background(), Process{PID: 1, Started: time.Now()})
	assert.ErrorIs(t, err, ErrMonitorUnavailable)
	assert.ErrorIs(t, err, os.ErrPermission)
}

// TestActivityFileRealProcess: a program that keeps touching its file (or a
// file in its directory) passes; one that stops touching fails after the
// limit.
func TestActivityFileRealProcess(t *testing.T) {
	t.Parallel()
	const limit = time.Second
	for _, tc := range []struct {
		name      string
		dir       bool
		stopAfter time.Duration
	}{
		{name: "file-touched"},
		{name: "file-stops", stopAfter: 300 * time.Millisecond},
		{name: "dir-touched", dir: true},
		{name: "dir-stops", dir: true, stopAfter: 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			watch := filepath.Join(t.TempDir(), "alive")
			touched := watch
			if tc.dir {
				require.NoError(t, os.Mkdir(watch, 0o700))
				touched = filepath.Join(watch, "heartbeat")
			}
			args := []string{touched, "100ms"}
			if tc.stopAfter > 0 {
				args = append(args, "--stop-after="+tc.stopAfter.String())
			}
			h := testproc.New(t, "touch-file", args...)
			h.Start(t)
			p := liveProcess(t, h.WaitReady(t, 10*time.Second))
			a := activityFile{Path: watch, Limit: limit}

			require.NoError(t, a.Check(context.Background(), p), "fresh at start")
			if tc.stopAfter == 0 {
				// Past the limit after the start (and after the directory's
				// own mtime, set when the heartbeat file was created).
				for end := time.Now().Add(limit + 700*time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
					require.NoError(t, a.Check(context.Background(), p))
				}
				return
			}
			var err error
			require.Eventually(t, func() bool {
				err = a.Check(context.Background(), p)
				return err != nil
			}, 10*time.Second, 50*time.Millisecond)
			assert.NotErrorIs(t, err, ErrMonitorUnavailable)
			assert.Regexp(t, `^activity file `+watch+` last modified 1\.\d s ago, limit 1 s$`, err.Error())
		})
	}
}
