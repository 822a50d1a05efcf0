package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// kill9Back kills title's process and waits until the daemon has another
// one running: the daemon still supervises.
func (w *world) kill9Back(title string, why string) {
	w.t.Helper()
	old := snapshot(w.t)[title]
	require.Len(w.t, old, 1, title)
	require.NoError(w.t, syscall.Kill(old[0], syscall.SIGKILL))
	testproc.WaitFor(w.t, 15*time.Second, func() bool {
		now := snapshot(w.t)[title]
		return len(now) == 1 && now[0] != old[0]
	}, why)
}

// Corrupted and hostile files under a running usrsvcd: each is named with
// its fix by the tool that meets it, gets the right code, and disturbs
// nothing else: the daemon keeps supervising the other program.
func TestHostileFilesUnderDaemon(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	names, titles := w.sleepers(2)
	web, other := names[0], names[1]
	w.write()
	dpid := w.startDaemon()
	w.waitStarted(2, 60*time.Second)
	pidfile := w.path("run/" + web + ".pid")
	state := w.path("state")
	record := filepath.Join(state, "programs", web+".daemon.json")
	lock := filepath.Join(state, "locks", web+".lock")

	// Pidfiles: stale, explained, replaced; status still answers 0.
	for _, c := range []struct{ name, content, why string }{
		{"empty", "", "does not hold a pid"},
		{"garbage", "12ab\x00", "does not hold a pid"},
		{"negative", "-42\n", "does not hold a pid"},
		{"pid of a process of ours that is not the program", strconv.Itoa(os.Getpid()), "does not match proctitle_re"},
		{"huge", strings.Repeat("7", 1<<20), "larger than 4096 bytes"},
	} {
		require.NoError(t, os.WriteFile(pidfile, []byte(c.content), 0o600))
		code, out, errOut := w.usrsvc("status", web)
		assert.Equal(t, 0, code, c.name+": "+out+errOut)
		assert.Contains(t, errOut, "stale pidfile "+pidfile+":", c.name)
		assert.Contains(t, errOut, c.why, c.name)
	}
	require.NoError(t, os.Remove(pidfile))
	require.NoError(t, os.Symlink("/dev/zero", pidfile))
	code, _, errOut := w.usrsvc("status", web)
	assert.Equal(t, 0, code, errOut)
	fi, err := os.Lstat(pidfile)
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the symlinked pidfile is replaced by a plain one")
	w.kill9Back(titles[1], "the other program restarted while web's pidfile was hostile")

	// Records: truncated, of an unknown version: a warning naming the file
	// and the fix; the daemon rewrites them at its next record.
	for _, c := range []struct{ content, why string }{
		{`{"version":1,"program":"` + web + `","sta`, "is corrupt"},
		{`{"version":99,"program":"` + web + `"}`, "has format version 99"},
	} {
		require.NoError(t, os.WriteFile(record, []byte(c.content), 0o600))
		code, _, errOut := w.usrsvc("status", web)
		assert.Equal(t, 0, code, errOut)
		assert.Contains(t, errOut, record, c.why)
		assert.Contains(t, errOut, c.why)
		assert.Contains(t, errOut, "remove", c.why)
	}
	w.kill9Back(titles[0], "web restarted despite its broken record")
	testproc.WaitFor(t, 10*time.Second, func() bool {
		_, _, errOut := w.usrsvc("status", web)
		return !strings.Contains(errOut, record)
	}, "the daemon rewrote web's record")

	// A record replaced by a directory: the daemon logs it with the fix and
	// supervises on.
	require.NoError(t, os.Remove(record))
	require.NoError(t, os.Mkdir(record, 0o700))
	w.kill9Back(titles[0], "web restarted while its record is a directory")
	testproc.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(w.log(), "rm -r "+record) },
		"the daemon names the directory and the fix")
	require.NoError(t, os.Remove(record))

	// A lock replaced by a directory: web cannot be started (136, named,
	// with the fix); the other program is untouched; once fixed, the
	// daemon's retry brings web back.
	require.NoError(t, os.Remove(lock))
	require.NoError(t, os.Mkdir(lock, 0o700))
	code, _, errOut = w.usrsvc("stop", web)
	assert.Equal(t, 136, code, errOut)
	assert.Contains(t, errOut, "rm -r "+lock)
	old := snapshot(t)[titles[0]]
	require.Len(t, old, 1)
	require.NoError(t, syscall.Kill(old[0], syscall.SIGKILL))
	testproc.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(w.log(), "cannot open lock file "+lock) },
		"the daemon logs the lock it cannot take")
	w.kill9Back(titles[1], "the other program restarted while web's lock is a directory")
	require.NoError(t, os.Remove(lock))
	testproc.WaitFor(t, 20*time.Second, func() bool { return len(snapshot(t)[titles[0]]) == 1 }, "web back after the fix (backoff retry)")

	// The state directory opened to others: refused by every command, with
	// the fix; the running daemon is not disturbed.
	require.NoError(t, os.Chmod(state, 0o770))
	for _, args := range [][]string{{"status", web}, {"stop", "all"}, {"start", other}} {
		code, _, errOut := w.usrsvc(args...)
		want := 136
		if args[1] == "all" {
			want = 1 // "all" is 0 or 1; the refusal is in the output
		}
		assert.Equal(t, want, code, "%v: %s", args, errOut)
		assert.Contains(t, errOut, "chmod go-w "+state)
	}
	code, _, errOut = w.usrsvcd("status")
	assert.Equal(t, 136, code, errOut)
	require.NoError(t, os.Chmod(state, 0o700))
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(state, 65534, 65534))
		code, _, errOut = w.usrsvc("status", web)
		assert.Equal(t, 136, code, errOut)
		assert.Contains(t, errOut, "owned by uid 65534")
		require.NoError(t, os.Chown(state, 0, 0))
	}
	assert.True(t, testproc.Alive(dpid))
	w.kill9Back(titles[1], "supervision went on")

	// The daemon's lock replaced by a directory: usrsvcd start says so.
	code, _, errOut = w.usrsvcd("stop")
	require.Equal(t, 0, code, errOut)
	dlock := filepath.Join(state, "usrsvcd.lock")
	require.NoError(t, os.Remove(dlock))
	require.NoError(t, os.Mkdir(dlock, 0o700))
	code, out, errOut := w.usrsvcd("start")
	assert.Equal(t, 136, code, out+errOut)
	assert.Contains(t, out+errOut, "rm -r "+dlock)
	require.NoError(t, os.Remove(dlock))
	w.startDaemon()
	waitAllOne(t, titles, 10*time.Second) // both ran on, one process each
}

// A pidfile naming another user's process whose title is exactly the
// program's (root only): stale, never adopted, never signalled.
func TestPidfileOfAnotherUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	w := newWorld(t, false)
	names, titles := w.sleepers(1)
	web := names[0]
	w.write()
	w.startDaemon()
	w.waitStarted(1, 60*time.Second)
	ours := snapshot(t)[titles[0]]
	require.Len(t, ours, 1)

	// The stranger runs the very same command line.
	args := strings.Fields(titles[0])
	stranger := exec.Command(args[0], args[1:]...)
	stranger.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, Setsid: true}
	require.NoError(t, stranger.Start())
	t.Cleanup(func() { stranger.Process.Kill(); stranger.Wait() })
	pidfile := w.path("run/" + web + ".pid")
	require.NoError(t, os.WriteFile(pidfile, []byte(fmt.Sprintf("%d\n", stranger.Process.Pid)), 0o600))

	code, out, errOut := w.usrsvc("status", web)
	assert.Equal(t, 0, code, out+errOut)
	assert.Contains(t, errOut, fmt.Sprintf("process %d belongs to another user (uid 65534)", stranger.Process.Pid))
	assert.Contains(t, out, fmt.Sprintf("pid %d", ours[0]), "ours, found by the scan")

	require.NoError(t, os.WriteFile(pidfile, []byte(fmt.Sprintf("%d\n", stranger.Process.Pid)), 0o600))
	code, _, errOut = w.usrsvc("stop", web)
	assert.Equal(t, 0, code, errOut)
	assert.False(t, testproc.Alive(ours[0]), "ours stopped")
	assert.True(t, testproc.Alive(stranger.Process.Pid), "the stranger's process is never signalled")
	require.NoError(t, os.WriteFile(pidfile, []byte(fmt.Sprintf("%d\n", stranger.Process.Pid)), 0o600))
	code, _, errOut = w.usrsvc("start", web)
	assert.Equal(t, 0, code, errOut)
	data, err := os.ReadFile(pidfile)
	require.NoError(t, err)
	assert.NotEqual(t, strconv.Itoa(stranger.Process.Pid), strings.TrimSpace(string(data)), "never adopted")
	assert.True(t, testproc.Alive(stranger.Process.Pid))
}

// A record the account cannot read (mode 000): named, with the fix. Root
// reads anything, so as root the commands run as uid 65534 in a world of
// that user.
func TestUnreadableRecord(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	names, _ := w.sleepers(1)
	web := names[0]
	w.write()
	record := filepath.Join(w.path("state"), "programs", web+".manual.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(record), 0o700))
	require.NoError(t, os.WriteFile(record, []byte(`{"version":1,"program":"`+web+`","action":"stop"}`), 0o600))
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// The world becomes uid 65534's: its home (and the temp dir above
		// it) reachable, everything in it theirs.
		require.NoError(t, os.Chmod(filepath.Dir(w.home), 0o711))
		require.NoError(t, filepath.Walk(w.home, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, 65534, 65534)
		}))
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	require.NoError(t, os.Chmod(record, 0))
	cmd := w.command("usrsvc", "status", web)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	code, out, errOut := execCode(t, cmd)
	assert.Equal(t, 1, code, "not running: "+out+errOut)
	assert.Contains(t, errOut, record)
	assert.Contains(t, errOut, "permission denied: make it yours and private")
	// A stop writes a fresh record over it (the directory is the account's).
	cmd = w.command("usrsvc", "stop", web)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	code, _, errOut = execCode(t, cmd)
	assert.Equal(t, 0, code, errOut)
	cmd = w.command("usrsvc", "status", web)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	_, _, errOut = execCode(t, cmd)
	assert.NotContains(t, errOut, record)
}
