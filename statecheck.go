package usrsvc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// The state directory is trusted like the configuration: whoever can write
// in it can forge a manual stop, a daemon record or a lock. So it must be
// the account's own and closed to others, and each file in it that cannot
// be used is named with what to do about it.

// checkSafe refuses a state directory (or its locks/ and programs/
// subdirectories) that other users could change: writable by group or
// others, or owned by another user, like sshd's StrictModes. The error wraps
// [ErrPermission] and says the fix. A directory that does not exist yet is
// fine: usrsvc creates it, mode 0700.
func (d stateDir) checkSafe() error {
	for _, p := range []string{string(d), filepath.Join(string(d), "locks"), filepath.Join(string(d), "programs")} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fileError("checking the state directory "+p, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: state directory %s is not a directory (%s): remove it, or set state_dir to a directory of yours",
				ErrPermission, p, fi.Mode().Type())
		}
		if perm := fi.Mode().Perm(); perm&0o022 != 0 {
			return fmt.Errorf("%w: state directory %s is writable by group or others (mode %04o), so another user could forge its records and take its locks; refused: run chmod go-w %s",
				ErrPermission, p, perm, p)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
			return fmt.Errorf("%w: state directory %s is owned by uid %d, not you (uid %d), so its records and locks are theirs; refused: run chown -R %d %s, or set state_dir to a directory of yours",
				ErrPermission, p, st.Uid, os.Geteuid(), os.Geteuid(), p)
		}
	}
	return nil
}

// stateFileError explains why the state file path (a record, a lock)
// cannot be used, with the fix: a resource error as [fileError] says it,
// anything else wraps [ErrPermission] (and os.ErrNotExist stays visible to
// errors.Is).
func stateFileError(what, path string, err error) error {
	if _, ok := resourceErrno(err); ok {
		return fileError(what+" "+path, err)
	}
	var fix string
	fi, statErr := os.Lstat(path)
	switch {
	case errors.Is(err, syscall.EISDIR) || (statErr == nil && fi.IsDir()):
		fix = "it is a directory where a file belongs: remove it (rm -r " + path + ")"
	case errors.Is(err, os.ErrPermission):
		fix = fmt.Sprintf("permission denied: make it yours and private (chown %d %s; chmod 600 %s), or remove it", os.Geteuid(), path, path)
	default:
		return fmt.Errorf("%w: %s %s: %w", ErrPermission, what, path, err)
	}
	return fmt.Errorf("%w: %s %s: %s", ErrPermission, what, path, fix)
}

// CheckStateDir refuses cfg's state directory when other users could
// change it (writable by group or others, or owned by another user): its
// records, locks and the daemon's lock file would be theirs to forge. The
// library checks it before every operation and before Run; a tool that
// controls usrsvcd from its state directory (usrsvcd stop and status,
// usrsvcweb) checks it before believing what it finds there. The error
// wraps ErrPermission and says the fix.
func CheckStateDir(cfg *Config) error { return stateDir(cfg.Main.StateDir).checkSafe() }
