// Package atomicfile reads and writes the small files usrsvc keeps on disk
// (pidfiles, state records): written whole by rename, so a reader sees the
// old content or the new one, never a mix; read with plain syscalls.
package atomicfile

import (
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Write writes data to a temp file beside path, sets mode, and renames it
// over path. On error the temp file is removed and path is untouched.
func Write(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// WritePid writes a pidfile: the decimal pid and a newline, mode 0600,
// atomically. It is the only pidfile writer of usrsvc (the launcher, an
// adopting scan and usrsvcd's own pidfile all use it).
func WritePid(path string, pid int) error {
	return Write(path, []byte(strconv.Itoa(pid)+"\n"), 0o600)
}

// Read reads a small file (a pidfile, a state record) with plain
// open/read/close: os.ReadFile adds an fstat, fcntl calls and a netpoller
// registration attempt per file, which dominated `status all` for hundreds
// of programs. Errors are *os.PathError like os.ReadFile's; a file over
// 16 MiB is refused (EFBIG) after reading 16 MiB + 1 byte.
//
// The file is opened with O_NONBLOCK, so a FIFO (or a device) put where a
// pidfile or a record belongs never blocks the caller: a FIFO without a
// writer reads as empty. O_NONBLOCK changes nothing for a regular file.
func Read(path string) ([]byte, error) {
	return ReadLimit(path, 16<<20)
}

// ReadLimit is [Read] refusing a file over limit bytes (EFBIG) after
// reading at most limit+1 of them: a pidfile replaced by a 1 GB file, or a
// symlink to /dev/zero, costs one small read.
func ReadLimit(path string, limit int) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, min(512, limit+1))
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):min(cap(buf), limit+1)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		room := min(cap(buf), limit+1) - len(buf)
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return nil, &os.PathError{Op: "read", Path: path, Err: unix.EFBIG}
		}
		if n == 0 || n < room {
			// A short read of a regular file is its end: these files are
			// small and replaced whole by rename, never grown in place.
			return buf, nil
		}
	}
}
