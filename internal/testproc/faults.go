package testproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Faults the tests inject: a small file system that fills up, and a low
// open-file limit. They are real (a tmpfs mount, a real RLIMIT_NOFILE), not
// simulated, so the code under test meets the errors the kernel gives.

// Tmpfs mounts a tmpfs of size bytes on a new temp directory and returns its
// path; it is unmounted at cleanup (lazily, so a process still using it
// never blocks the test). Mounting needs root: without it the test is
// skipped. When root cannot mount (no CAP_SYS_ADMIN), the test fails under
// CI=true and is skipped otherwise.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	opts := fmt.Sprintf("size=%d,mode=0755", size)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testproc: mount tmpfs on %s: %v", dir, err)
		}
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// Fill fills the file system holding dir: it writes a ballast file in dir
// until a write fails with ENOSPC. It returns a function that removes the
// ballast, freeing the space (also run at cleanup; calling it twice is
// fine). Fill reserves nothing: after it, any write to that file system
// fails until something is freed.
func Fill(t testing.TB, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, ".testproc-ballast-"+strconv.Itoa(os.Getpid()))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatalf("testproc: fill %s: %v", dir, err)
	}
	chunk := make([]byte, 64<<10)
	for size := len(chunk); ; {
		_, err := f.Write(chunk[:size])
		if err == nil {
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) {
			f.Close()
			t.Fatalf("testproc: fill %s: %v", dir, err)
		}
		if size == 1 {
			break
		}
		size /= 2 // fill the last pages too
	}
	f.Close()
	free = func() { _ = os.Remove(path) }
	t.Cleanup(free)
	return free
}

// nofileBehaviour is the helper that runs a command under a lower
// open-file limit.
const nofileBehaviour = "with-nofile"

// WithOpenFileLimit returns a command that runs argv with RLIMIT_NOFILE
// set to n, soft and hard (like prlimit --nofile=n:n): the test binary sets
// the limit, then execs argv[0] (an absolute path, or looked up in $PATH).
// The hard limit matters: a Go program raises its soft limit to the hard
// one when it starts. The test binary's TestMain must call [Main].
func WithOpenFileLimit(n int, argv ...string) []string {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	return append([]string{exe, Marker, nofileBehaviour, strconv.Itoa(n)}, argv...)
}

// withNofile is the with-nofile behaviour: set the limit, exec the command.
func withNofile(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "testproc with-nofile: want N COMMAND [ARG...]")
		return 2
	}
	n, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testproc with-nofile: bad N %q\n", args[0])
		return 2
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		fmt.Fprintf(os.Stderr, "testproc with-nofile: setrlimit: %v\n", err)
		return 2
	}
	path, err := exec.LookPath(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "testproc with-nofile: %v\n", err)
		return 2
	}
	err = syscall.Exec(path, args[1:], os.Environ())
	fmt.Fprintf(os.Stderr, "testproc with-nofile: exec %s: %v\n", path, err)
	return 2
}
