// Package pathsafe tells whether another account could plant or replace
// a file in a directory: the check usrsvc makes, like sshd's StrictModes,
// before it writes a log, a pidfile or a socket there, or trusts a file
// read from there.
package pathsafe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Dir checks the directory dir, which is to hold a file usrsvc writes or
// trusts, and its ancestors. It returns an error saying why another
// account could plant or swap a file there, with the fix, or nil:
//
//   - dir itself must be owned by the current user or root and writable by
//     neither group nor others: in a shared directory such as /tmp (sticky
//     or not) anyone can create the file first, or a symbolic link in its
//     place;
//   - each ancestor must be owned by the current user or root, and when
//     writable by group or others it must be sticky (/tmp), so that the
//     directory below, which is ours, cannot be renamed away and replaced.
//
// A dir that does not exist yet is judged by its nearest existing
// ancestor, which is then where it will be created. Symbolic links in dir
// are resolved first: the directories checked are the real ones.
func Dir(dir string) error {
	dir = filepath.Clean(dir)
	real := dir
	for {
		r, err := filepath.EvalSymlinks(real)
		if err == nil {
			real = r
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil // unreadable: the open itself will fail and say why
		}
		up := filepath.Dir(real)
		if up == real {
			return nil
		}
		real = up
	}
	uid := os.Geteuid()
	for p, first := real, true; ; p, first = filepath.Dir(p), false {
		fi, err := os.Stat(p)
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		perm := fi.Mode().Perm()
		shown := dir
		if p != dir {
			shown = fmt.Sprintf("%s (of %s)", p, dir)
		}
		if owner := int(st.Uid); owner != uid && owner != 0 {
			return fmt.Errorf("directory %s is owned by uid %d, neither you (uid %d) nor root, so that account could put "+
				"its own file or a symbolic link there; use a directory of yours", shown, owner, uid)
		}
		if perm&0o022 != 0 {
			sticky := fi.Mode()&fs.ModeSticky != 0
			switch {
			case first:
				fix := "chmod go-w " + p
				if sticky {
					fix = "use a directory only you can write, e.g. one under ~/.local/state"
				}
				return fmt.Errorf("directory %s is writable by other accounts (mode %04o%s), so one of them could create "+
					"the file first, or a symbolic link in its place; refused: %s", shown, perm, stickyText(sticky), fix)
			case !sticky:
				return fmt.Errorf("directory %s is writable by other accounts (mode %04o) and not sticky, so one of them "+
					"could rename the directory below it and put its own in its place; refused: chmod go-w %s", shown, perm, p)
			}
		}
		if up := filepath.Dir(p); up == p {
			return nil
		}
	}
}

func stickyText(sticky bool) string {
	if sticky {
		return ", sticky like /tmp"
	}
	return ""
}

// File checks a file that holds a secret (a password, a TLS key): a
// regular file owned by the current user, readable and writable by
// nobody else, in a directory others cannot write (see [Dir]). fi is the
// file's info, from an open descriptor (os.File.Stat) so that it is the
// file read. It returns the reason and the fix, or nil.
func File(path string, fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not you (uid %d); refused: chown %d %s", path, st.Uid, os.Geteuid(), os.Geteuid(), path)
	}
	if perm := fi.Mode().Perm(); perm&0o066 != 0 {
		return fmt.Errorf("%s is readable or writable by group or others (mode %04o), so other local accounts could read "+
			"or change it; refused: run chmod 600 %s", path, perm, path)
	}
	if err := Dir(filepath.Dir(path)); err != nil {
		return err
	}
	return nil
}
