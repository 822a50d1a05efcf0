package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// activityFile is a [Monitor] that restarts a program whose activity file
// has not been modified for longer than Limit (the activityfile and
// activityfile_limit keys of [[Monitor]]).
//
// The activity time is the file's modification time; for a directory it is
// the newest of the directory's own mtime and the mtimes of its direct
// entries (not recursive; symbolic links inside count by their own mtime).
// It is never counted as older than the process's start (Process.Started),
// so a program that just started is never restarted for an old file, even
// with monitor_after = 0. A missing file has no activity: it is stale once
// the process has run for Limit.
//
// A file that cannot be examined (permission denied, a path through a
// non-directory) is the monitor's failure, an error wrapping
// [ErrMonitorUnavailable], never a restart.
type activityFile struct {
	// Path is the file or directory (an absolute path).
	Path string
	// Limit is the longest time without activity.
	Limit time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// dirBatch is how many directory entries are read at a time.
const dirBatch = 256

// Name returns "activityfile".
func (a activityFile) Name() string { return "activityfile" }

// Check returns an error (the reason to restart) when the activity time of
// a.Path is older than a.Limit, or when it does not exist and p has run for
// longer than a.Limit.
func (a activityFile) Check(ctx context.Context, p Process) error {
	if a.Limit <= 0 {
		return fmt.Errorf("%w: activityfile %s: activityfile_limit is not set", ErrMonitorUnavailable, a.Path)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: activityfile %s: %w", ErrMonitorUnavailable, a.Path, err)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	last, err := activityTime(ctx, a.Path)
	missing := errors.Is(err, fs.ErrNotExist)
	if err != nil && !missing {
		return fmt.Errorf("%w: activityfile: %w", ErrMonitorUnavailable, err)
	}
	t := now()
	floored := !p.Started.IsZero() && (missing || last.Before(p.Started))
	if floored {
		last = p.Started
	}
	age := t.Sub(last)
	if age <= a.Limit {
		return nil
	}
	switch {
	case missing && floored:
		return fmt.Errorf("activity file %s does not exist (the process started %s s ago, limit %s s)",
			a.Path, fmtSeconds(age), fmtSeconds(a.Limit))
	case missing:
		return fmt.Errorf("activity file %s does not exist", a.Path)
	case floored:
		return fmt.Errorf("activity file %s not modified since the process started %s s ago, limit %s s",
			a.Path, fmtSeconds(age), fmtSeconds(a.Limit))
	default:
		return fmt.Errorf("activity file %s last modified %s s ago, limit %s s",
			a.Path, fmtSeconds(age), fmtSeconds(a.Limit))
	}
}

// activityTime returns the mtime of path, or for a directory the newest of
// its own and its direct entries' mtimes. Entries that vanish while the
// directory is read are skipped. An error about path itself wraps
// fs.ErrNotExist when it does not exist.
func activityTime(ctx context.Context, path string) (time.Time, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, err
	}
	last := fi.ModTime()
	if !fi.IsDir() {
		return last, nil
	}
	d, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return last, nil // removed since the stat: its mtime is all there is
		}
		return time.Time{}, err
	}
	defer d.Close()
	for {
		if err := ctx.Err(); err != nil {
			return time.Time{}, fmt.Errorf("%s: %w", path, err)
		}
		entries, err := d.ReadDir(dirBatch)
		for _, e := range entries {
			info, err := e.Info() // lstat
			if err != nil {
				continue // vanished since the directory was read
			}
			if mt := info.ModTime(); mt.After(last) {
				last = mt
			}
		}
		if errors.Is(err, io.EOF) {
			return last, nil
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %w", filepath.Clean(path), err)
		}
	}
}

// fmtSeconds formats d in whole seconds, or with one decimal below 10 s.
func fmtSeconds(d time.Duration) string {
	if d >= 10*time.Second || d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
}
