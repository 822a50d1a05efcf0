package chaos

import (
	"bytes"
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
	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// openPTY opens a pseudo-terminal: the master and the slave's path.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	return m, "/dev/pts/" + strconv.Itoa(n)
}

// sigIgnored returns pid's mask of ignored signals.
func sigIgnored(t *testing.T, pid int) uint64 {
	t.Helper()
	masks, err := proc.Default().Signals(pid)
	require.NoError(t, err)
	return masks.Ignored
}

// usrsvcd started from a terminal that then closes (SIGHUP to the whole
// session): the daemon detached into a session of its own and runs on,
// supervising.
func TestDaemonSurvivesTerminalHangup(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	_, titles := w.sleepers(1)
	w.write()
	master, slave := openPTY(t)
	defer master.Close()
	tty, err := os.OpenFile(slave, os.O_RDWR, 0)
	require.NoError(t, err)
	// A login shell's session: bash owns the terminal, runs usrsvcd start,
	// then waits as an interactive shell would.
	shell := exec.Command("/bin/bash", "-c", fmt.Sprintf("%s --config %s start; echo started=$?; exec sleep 60",
		filepath.Join(w.bin, "usrsvcd"), w.cfg))
	shell.Env = append(os.Environ(), "HOME="+w.home, "USRSVC_CONFIG=")
	shell.Stdin, shell.Stdout, shell.Stderr = tty, tty, tty
	shell.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	require.NoError(t, shell.Start())
	tty.Close()
	t.Cleanup(func() { shell.Process.Kill(); shell.Wait() })

	var out bytes.Buffer
	buf := make([]byte, 4096)
	testproc.WaitFor(t, 30*time.Second, func() bool {
		master.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _ := master.Read(buf)
		out.Write(buf[:n])
		return strings.Contains(out.String(), "started=")
	}, "usrsvcd start in the terminal")
	require.Contains(t, out.String(), "started=0", out.String())
	dpid := w.daemonPID()
	require.NotZero(t, dpid)
	w.waitStarted(1, 30*time.Second)

	// The terminal goes away: the kernel hangs up its session.
	master.Close()
	err = shell.Wait()
	require.Error(t, err, "the shell died of the hangup")
	assert.Contains(t, err.Error(), "hangup")
	time.Sleep(500 * time.Millisecond)
	assert.True(t, testproc.Alive(dpid), "usrsvcd survived the hangup")
	old := waitAllOne(t, titles, 10*time.Second)
	require.NoError(t, syscall.Kill(old[0], syscall.SIGKILL))
	watchBack(t, titles, old, time.Now(), 30*time.Second)
	figure(t, "terminal hangup: usrsvcd started from a pty whose session got SIGHUP → daemon alive, still restarting programs")
}

// usrsvcd started by a caller that ignores every signal it can, with its
// stdout a pipe nobody reads: the start reports its real code, the daemon
// runs on, obeys SIGUSR1 and SIGTERM, and its programs get default
// dispositions.
func TestDaemonWithSignalsIgnoredAndStdoutClosed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	_, titles := w.sleepers(1)
	w.write()
	// trap '' makes bash set SIG_IGN, which exec keeps.
	var sigs []string // every signal but KILL and STOP, which cannot be ignored
	for sig := 1; sig <= 31; sig++ {
		if sig != int(syscall.SIGKILL) && sig != int(syscall.SIGSTOP) {
			sigs = append(sigs, strconv.Itoa(sig))
		}
	}
	r, wp, err := os.Pipe()
	require.NoError(t, err)
	r.Close() // nobody reads: a write gets EPIPE (and SIGPIPE, ignored)
	cmd := exec.Command("/bin/bash", "-c", fmt.Sprintf("trap '' %s; exec %s --config %s start",
		strings.Join(sigs, " "), filepath.Join(w.bin, "usrsvcd"), w.cfg))
	cmd.Env = append(os.Environ(), "HOME="+w.home, "USRSVC_CONFIG=")
	cmd.Stdout = wp
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	wp.Close()
	require.NoError(t, err, "usrsvcd start: %s", stderr.String())
	dpid := w.daemonPID()
	require.NotZero(t, dpid)
	t.Cleanup(func() { syscall.Kill(dpid, syscall.SIGKILL) })
	w.waitStarted(1, 30*time.Second)
	pids := waitAllOne(t, titles, 10*time.Second)
	assert.Zero(t, sigIgnored(t, pids[0]), "the program ignores nothing")

	code, out, errOut := w.usrsvcd("reread")
	assert.Equal(t, 0, code, "SIGUSR1 obeyed: "+out+errOut)
	code, out, errOut = w.usrsvcd("stop")
	assert.Equal(t, 0, code, "SIGTERM obeyed: "+out+errOut)
	assert.False(t, testproc.Alive(dpid))
	assert.Equal(t, pids, waitAllOne(t, titles, time.Second), "the program runs on")
	figure(t, "signals ignored by the caller (%d), stdout a closed pipe: usrsvcd start exits 0, reread and stop obeyed, programs ignore nothing", len(sigs))
}

// launchers returns the pids of the world's launchers: the usrsvc-launcher
// processes holding a lock file of the world's state directory (a launcher
// inherits its program's lock and keeps it until the program is recorded).
func (w *world) launchers(t *testing.T) []int {
	t.Helper()
	s, err := proc.Default().Snapshot(os.Getuid())
	require.NoError(t, err)
	var pids []int
	for _, p := range s.Procs {
		if p.Zombie() || !strings.HasPrefix(p.Title, "usrsvc-launcher") {
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.PID))
		for _, fd := range fds {
			if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.PID, fd.Name())); err == nil &&
				strings.HasPrefix(target, w.path("state")+"/") {
				pids = append(pids, p.PID)
				break
			}
		}
	}
	return pids
}

// lockFree reports whether path's flock can be taken now.
func lockFree(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if os.IsNotExist(err) {
		return true
	}
	require.NoError(t, err)
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return true
}

// SIGTERM while usrsvcd starts 50 programs: a bounded shutdown with nothing
// half-done — no launcher left, every lock released, each program either
// running and recorded (pidfile) or not running at all, never twice.
func TestSIGTERMDuringMassStart(t *testing.T) {
	heavy(t)
	n := envInt("USRSVC_CHAOS_MASS_N", 50)
	w := newWorld(t, false)
	names, titles := w.sleepers(n, "success_seconds = 2")
	w.write()
	dpid := w.startDaemon()
	// The starts are under way (their success window is 2 s): stop now.
	testproc.WaitFor(t, 30*time.Second, func() bool { return len(w.launchers(t)) > 0 }, "launchers at work")
	t0 := time.Now()
	require.NoError(t, syscall.Kill(dpid, syscall.SIGTERM))
	testproc.WaitFor(t, 30*time.Second, func() bool { return !testproc.Alive(dpid) }, "usrsvcd gone after SIGTERM")
	shutdown := time.Since(t0)
	inFlight := len(w.launchers(t))
	testproc.WaitFor(t, 30*time.Second, func() bool { return len(w.launchers(t)) == 0 }, "every launcher done")

	snap := snapshot(t)
	running, stopped := 0, 0
	for i, name := range names {
		live := snap[titles[i]]
		require.LessOrEqual(t, len(live), 1, name)
		data, err := os.ReadFile(w.path("run/" + name + ".pid"))
		if len(live) == 1 {
			running++
			require.NoError(t, err, "%s runs: it is recorded", name)
			assert.Equal(t, strconv.Itoa(live[0]), strings.TrimSpace(string(data)), name)
		} else {
			stopped++
			if err == nil {
				pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
				assert.False(t, testproc.Alive(pid), "%s: its pidfile names no live process", name)
			}
		}
		assert.True(t, lockFree(t, filepath.Join(w.path("state"), "locks", name+".lock")), "%s: lock released", name)
	}
	assert.True(t, lockFree(t, filepath.Join(w.path("state"), "usrsvcd.lock")), "the daemon lock is released")
	_, err := os.Stat(w.path("usrsvcd.pid"))
	assert.True(t, os.IsNotExist(err), "usrsvcd's pidfile removed")
	assert.Less(t, shutdown, 15*time.Second)

	// A new daemon takes over what runs and starts the rest, once each.
	w.startDaemon()
	waitAllOne(t, titles, 60*time.Second)
	stillOne(t, titles, time.Second)
	figure(t, "SIGTERM during a start of %d programs: shut down in %v with %d launchers in flight; after them %d running and recorded, %d not started, 0 half-done, all locks free",
		n, shutdown.Round(time.Millisecond), inFlight, running, stopped)
}
