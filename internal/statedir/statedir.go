// Package statedir is the state directory of one account's usrsvc: its
// layout, the formats of its files, and the control of usrsvcd through it.
// usrsvc, usrsvcd and usrsvcweb all read and write it through this package.
//
// The layout:
//
//	locks/NAME.lock            flock of program NAME, held by every start, stop and restart
//	programs/NAME.manual.json  the last manual operation: "stop" (usrsvcd leaves the program stopped),
//	                           "start" or "restart" (reset usrsvcd's restart count; the exit a restart
//	                           causes is not a crash)
//	programs/NAME.daemon.json  what usrsvcd knows of NAME: state, restarts, last exit (written by usrsvcd only)
//	programs/NAME.starting     (empty) a start in its success window: a stop by hand that finds the
//	                           lock held and this marker cancels the start
//	usrsvcd.lock               held by the running usrsvcd, which writes its pid into it
//	usrsvcd.reload.json        the last reread's generation and outcome (the acknowledgement of usrsvcd reread)
//	usrsvcd.log                usrsvcd's log when detached without usrsvcd_stdout
//
// Every JSON file carries "version"; a reader refuses a version it does not
// know with a clear error instead of misreading it. Files are written
// atomically (temp + rename), mode 0600; directories are 0700.
//
// The state directory is trusted like the configuration: whoever can write
// in it can forge a manual stop, a daemon record or a lock. So it must be
// the account's own and closed to others ([Dir.CheckSafe]).
package statedir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/atomicfile"
	"github.com/usrsvc/usrsvc/internal/errs"
)

// Version is the format version of the JSON files.
const Version = 1

// Names in the state directory.
const (
	LocksDir     = "locks"
	ProgramsDir  = "programs"
	ManualSuffix = ".manual.json"
	DaemonSuffix = ".daemon.json"
	// StartingSuffix names a start's marker (see SetStarting).
	StartingSuffix = ".starting"
	DaemonLock     = "usrsvcd.lock"
	ReloadAckFile  = "usrsvcd.reload.json"
	DaemonLog      = "usrsvcd.log"
)

// Dir is a state directory.
type Dir string

// Path returns the path of name in d.
func (d Dir) Path(name ...string) string {
	return filepath.Join(append([]string{string(d)}, name...)...)
}

// Ensure creates the subdirectory sub of d (and d), mode 0700, and returns its path.
func (d Dir) Ensure(sub string) (string, error) {
	p := d.Path(sub)
	if err := os.MkdirAll(p, 0o700); err != nil {
		return "", errs.File("cannot create state directory "+p, err)
	}
	return p, nil
}

// Lock takes the exclusive lock of program name, waiting up to timeout
// (errs.Locked after it). Closing the returned file releases the lock.
func (d Dir) Lock(ctx context.Context, name string, timeout time.Duration) (*os.File, error) {
	return d.LockWaiting(ctx, name, timeout, nil)
}

// LockWaiting is Lock calling waiting, when not nil, while the lock is
// held by another operation: after each failed attempt, at most every
// waitingPeriod. Its time counts in timeout.
func (d Dir) LockWaiting(ctx context.Context, name string, timeout time.Duration, waiting func()) (*os.File, error) {
	dir, err := d.Ensure(LocksDir)
	if err != nil {
		return nil, err
	}
	return lockFile(ctx, filepath.Join(dir, name+".lock"), timeout, waiting)
}

// waitingPeriod is how often LockWaiting calls its function.
const waitingPeriod = 200 * time.Millisecond

// LockFile takes an exclusive flock of path (created 0600), waiting up to
// timeout for it.
func LockFile(ctx context.Context, path string, timeout time.Duration) (*os.File, error) {
	return lockFile(ctx, path, timeout, nil)
}

func lockFile(ctx context.Context, path string, timeout time.Duration, waiting func()) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, FileError("cannot open lock file", path, err)
	}
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	var waited time.Time
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, errs.File("flock "+path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w: %s is held by another operation for more than %v; try again later", errs.Locked, path, timeout)
		}
		if waiting != nil && time.Since(waited) >= waitingPeriod {
			waiting()
			waited = time.Now()
			continue // try again at once: waiting may have freed it
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("%w: waiting for %s: %w", errs.Locked, path, ctx.Err())
		case <-t.C:
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// CheckWritable reports whether a small file can be written in d now, by
// writing and removing one: nil, or an error wrapping errs.Resource (a
// full disk, no open files left) or errs.Permission.
func (d Dir) CheckWritable() error {
	f, err := os.CreateTemp(string(d), ".write-probe*")
	if err != nil {
		return errs.File("writing in the state directory "+string(d), err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write([]byte("usrsvc write probe\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errs.File("writing in the state directory "+string(d), err)
	}
	return nil
}

// CheckSafe refuses a state directory (or its locks/ and programs/
// subdirectories) that other users could change: writable by group or
// others (sticky or not), or owned by another user, like sshd's
// StrictModes. The error wraps errs.Permission and says the fix. A
// directory that does not exist yet is fine: it is created 0700.
func (d Dir) CheckSafe() error {
	for _, p := range []string{string(d), d.Path(LocksDir), d.Path(ProgramsDir)} {
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return errs.File("checking the state directory "+p, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 && p != string(d) {
			return fmt.Errorf("%w: %s in the state directory is a symbolic link; refused: remove it (usrsvc recreates it)",
				errs.Permission, p)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			if fi, err = os.Stat(p); err != nil {
				return errs.File("checking the state directory "+p, err)
			}
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: state directory %s is not a directory (%s): remove it, or set state_dir to a directory of yours",
				errs.Permission, p, fi.Mode().Type())
		}
		if perm := fi.Mode().Perm(); perm&0o022 != 0 {
			return fmt.Errorf("%w: state directory %s is writable by group or others (mode %04o), so another user could forge its records and take its locks; refused: run chmod go-w %s",
				errs.Permission, p, perm, p)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
			return fmt.Errorf("%w: state directory %s is owned by uid %d, not you (uid %d), so its records and locks are theirs; refused: run chown -R %d %s, or set state_dir to a directory of yours",
				errs.Permission, p, st.Uid, os.Geteuid(), os.Geteuid(), p)
		}
	}
	return nil
}

// FileError explains why the state file path (a record, a lock) cannot be
// used, with the fix: a resource error as errs.File says it, anything
// else wraps errs.Permission, keeping the cause in the chain.
func FileError(what, path string, err error) error {
	if errs.IsResource(err) {
		return errs.File(what+" "+path, err)
	}
	fi, statErr := os.Lstat(path)
	switch {
	case errors.Is(err, syscall.EISDIR) || (statErr == nil && fi.IsDir()):
		return fmt.Errorf("%w: %s %s: it is a directory where a file belongs: remove it (rm -r %s): %w", errs.Permission, what, path, path, err)
	case errors.Is(err, syscall.ELOOP) || (statErr == nil && fi.Mode()&os.ModeSymlink != 0):
		return fmt.Errorf("%w: %s %s: it is a symbolic link, which usrsvc never follows in its state directory: remove it: %w", errs.Permission, what, path, err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w: %s %s: permission denied: make it yours and private (chown %d %s; chmod 600 %s), or remove it: %w",
			errs.Permission, what, path, os.Geteuid(), path, path, err)
	}
	return fmt.Errorf("%w: %s %s: %w", errs.Permission, what, path, err)
}

// writeJSON writes a record atomically, mode 0600.
func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o600); err != nil {
		return FileError("cannot write state file", path, err)
	}
	return nil
}

// versioned is a state record: it tells its format version.
type versioned interface{ version() int }

// readJSON reads a state record. A record of another format version is
// refused with a clear error, never misread. A missing file is an error
// wrapping os.ErrNotExist.
func readJSON(path string, v versioned) error {
	data, err := atomicfile.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return err
	} else if err != nil {
		return FileError("cannot read state file", path, err)
	}
	err = json.Unmarshal(data, v)
	if err == nil && v.version() == Version {
		return nil
	}
	var head struct {
		Version int `json:"version"`
	}
	if herr := json.Unmarshal(data, &head); herr != nil {
		return fmt.Errorf("state file %s is corrupt (%w): remove it", path, herr)
	}
	if head.Version != Version {
		return fmt.Errorf("state file %s has format version %d, this usrsvc understands %d: use the matching usrsvc version or remove the file", path, head.Version, Version)
	}
	return fmt.Errorf("state file %s is corrupt (%w): remove it", path, err)
}
