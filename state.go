package usrsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/atomicfile"
)

// The state directory holds, for one account:
//
//	locks/NAME.lock          flock of program NAME, held by every start/stop/restart
//	programs/NAME.manual.json  the last manual operation: "stop" (usrsvcd leaves it stopped), "start" or "restart" (reset usrsvcd's restart count; the exit a restart causes is not a crash)
//	programs/NAME.daemon.json  what usrsvcd knows of NAME: state, restarts, last exit (written only by usrsvcd)
//	usrsvcd.lock             held by the running usrsvcd
//	usrsvcd.reload.json      the last reread's generation and outcome (the acknowledgement of usrsvcd reread)
//	usrsvcd.log              usrsvcd's log when detached without usrsvcd_stdout
//
// Every JSON file carries "version"; a reader refuses a version it does not
// know with a clear error instead of misreading it. Files are written
// atomically (temp + rename), mode 0600, directories 0700.
const stateVersion = 1

// StateDir is the state directory of a configuration.
type stateDir string

func (d stateDir) ensure(sub string) (string, error) {
	p := filepath.Join(string(d), sub)
	if err := os.MkdirAll(p, 0o700); err != nil {
		return "", fileError("cannot create state directory "+p, err)
	}
	return p, nil
}

// Lock takes the exclusive lock of program name, waiting up to timeout
// (ErrLocked after it). Closing the returned file releases the lock.
func (d stateDir) lock(ctx context.Context, name string, timeout time.Duration) (*os.File, error) {
	dir, err := d.ensure("locks")
	if err != nil {
		return nil, err
	}
	return lockFile(ctx, filepath.Join(dir, name+".lock"), timeout)
}

func lockFile(ctx context.Context, path string, timeout time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, stateFileError("cannot open lock file", path, err)
	}
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fileError("flock "+path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w: %s is held by another operation for more than %v; try again later", ErrLocked, path, timeout)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("%w: waiting for %s: %w", ErrLocked, path, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// CheckWritable reports whether a small file can be written in the state
// directory now, by writing and removing one: nil, or an error wrapping
// ErrResource (a full disk, no open files left) or ErrPermission. usrsvcd
// reread uses it to tell at once that no acknowledgement can come.
func (d stateDir) checkWritable() error {
	f, err := os.CreateTemp(string(d), ".write-probe*")
	if err != nil {
		return fileError("writing in the state directory "+string(d), err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write([]byte("usrsvc write probe\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fileError("writing in the state directory "+string(d), err)
	}
	return nil
}

// manualRecord is the last operation done by hand on a program (usrsvc,
// an embedder's Manager.Start/Stop/Restart): "stop" means stopped by hand,
// not to be restarted by usrsvcd; "start" means started by hand, which also
// resets usrsvcd's restart count.
type manualRecord struct {
	Version int       `json:"version"`
	Program string    `json:"program"`
	Action  Action    `json:"action"` // "stop", "start" or "restart"
	Time    time.Time `json:"time"`
}

func (d stateDir) manualPath(name string) string {
	return filepath.Join(string(d), "programs", name+".manual.json")
}

func (d stateDir) setManual(name string, action Action, t time.Time) error {
	if _, err := d.ensure("programs"); err != nil {
		return err
	}
	return writeJSON(d.manualPath(name), manualRecord{Version: stateVersion, Program: name, Action: action, Time: t})
}

// manual reads the last manual operation on name; nil when there is none.
func (d stateDir) manual(name string) (*manualRecord, error) {
	var r manualRecord
	err := readJSON(d.manualPath(name), &r)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// StoppedByHand reports whether name was stopped by hand (usrsvc stop) and
// not started by hand since, and when.
func (d stateDir) stoppedByHand(name string) (bool, time.Time, error) {
	r, err := d.manual(name)
	if err != nil || r == nil {
		return false, time.Time{}, err
	}
	return r.Action == ActionStop, r.Time, nil
}

// DaemonRecord is what usrsvcd records about a program in the state
// directory, shown by usrsvc status.
type DaemonRecord struct {
	Version  int         `json:"version"`
	Program  string      `json:"program"`
	State    State       `json:"state"`
	Restarts int         `json:"restarts"`
	LastExit *ExitStatus `json:"last_exit,omitempty"`
	PID      int         `json:"pid,omitempty"`
	Updated  time.Time   `json:"updated"`
	Reason   string      `json:"reason,omitempty"`
	// ManualSeen is the time of the last manual operation the daemon
	// applied, so a new daemon does not apply an old one again.
	ManualSeen time.Time `json:"manual_seen,omitzero"`
}

func (d stateDir) daemonPath(name string) string {
	return filepath.Join(string(d), "programs", name+".daemon.json")
}

// DaemonRecord reads usrsvcd's record of name; nil when there is none.
func (d stateDir) daemonRecord(name string) (*DaemonRecord, error) {
	var r DaemonRecord
	err := readJSON(d.daemonPath(name), &r)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (d stateDir) writeDaemonRecord(r *DaemonRecord) error {
	if _, err := d.ensure("programs"); err != nil {
		return err
	}
	r.Version = stateVersion
	return writeJSON(d.daemonPath(r.Program), r)
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o600); err != nil {
		return stateFileError("cannot write state file", path, err)
	}
	return nil
}

// versioned is a state record: it tells its format version.
type versioned interface{ version() int }

func (r *manualRecord) version() int { return r.Version }
func (r *DaemonRecord) version() int { return r.Version }
func (a *ReloadAck) version() int    { return a.Version }

// readJSON reads a state record. A record of another format version is
// refused with a clear error, never misread; the record is decoded once
// (its version checked after), and only a failure looks at the version
// alone, so that another version's fields are reported as such.
func readJSON(path string, v versioned) error {
	data, err := atomicfile.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return err
	} else if err != nil {
		return stateFileError("cannot read state file", path, err)
	}
	err = json.Unmarshal(data, v)
	if err == nil && v.version() == stateVersion {
		return nil
	}
	var head struct {
		Version int `json:"version"`
	}
	if herr := json.Unmarshal(data, &head); herr != nil {
		return fmt.Errorf("state file %s is corrupt (%w): remove it", path, herr)
	}
	if head.Version != stateVersion {
		return fmt.Errorf("state file %s has format version %d, this usrsvc understands %d: use the matching usrsvc version or remove the file", path, head.Version, stateVersion)
	}
	return fmt.Errorf("state file %s is corrupt (%v): remove it", path, err)
}
