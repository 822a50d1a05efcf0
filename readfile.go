package usrsvc

import (
	"os"

	"golang.org/x/sys/unix"
)

// readFile reads a small file (a pidfile, a state record) with plain
// open/read/close: os.ReadFile adds an fstat, fcntl calls and a netpoller
// registration attempt per file, which dominated `status all` for hundreds
// of programs. Errors are *os.PathError like os.ReadFile's.
//
// The file is opened with O_NONBLOCK, so a FIFO (or a device) put where a
// pidfile or a record belongs never blocks the caller: a FIFO without a
// writer reads as empty. O_NONBLOCK changes nothing for a regular file.
func readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		room := cap(buf) - len(buf)
		buf = buf[:len(buf)+n]
		if n == 0 || n < room {
			// A short read of a regular file is its end: these files are
			// small and replaced whole by rename, never grown in place.
			return buf, nil
		}
		if len(buf) > 16<<20 {
			return nil, &os.PathError{Op: "read", Path: path, Err: unix.EFBIG}
		}
	}
}
