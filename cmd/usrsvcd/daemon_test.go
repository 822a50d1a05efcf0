package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
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

const asMain = "USRSVCD_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	testproc.Main()
	if os.Getenv(asMain) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type dworld struct {
	t   *testing.T
	dir string
	cfg string
}

func newDWorld(t *testing.T, programs ...string) *dworld {
	dir := t.TempDir()
	w := &dworld{t: t, dir: dir, cfg: filepath.Join(dir, "usrsvc.cfg")}
	w.write(programs...)
	return w
}

func (w *dworld) write(programs ...string) {
	text := fmt.Sprintf("[Main]\npidfile = %s/usrsvcd.pid\nstate_dir = %s/state\nusrsvcd_stdout = %s/usrsvcd.log\n\n", w.dir, w.dir, w.dir)
	for _, p := range programs {
		text += strings.ReplaceAll(p, "DIR", w.dir)
	}
	require.NoError(w.t, os.WriteFile(w.cfg, []byte(text), 0o644))
}

func dprogram(name, command string, extra ...string) string {
	return fmt.Sprintf("[Program:%s]\ncommand = %s\npidfile = DIR/%s.pid\nstdout = DIR/%s.log\nsuccess_seconds = 0.3\n%s\n",
		name, command, name, name, strings.Join(extra, "\n"))
}

// usrsvcd runs the test binary as usrsvcd.
func (w *dworld) usrsvcd(args ...string) (int, string) {
	cmd := exec.Command(os.Args[0], append([]string{"--config", w.cfg}, args...)...)
	cmd.Env = append(os.Environ(), asMain+"=1")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	return code, string(out)
}

// startDaemon starts the daemon detached and stops it (by pid) at cleanup.
func (w *dworld) startDaemon() int {
	code, out := w.usrsvcd("start")
	require.Equal(w.t, 0, code, out)
	pid := w.daemonPID()
	w.t.Cleanup(func() {
		if pidAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return pid
}

func (w *dworld) daemonPID() int {
	data, err := os.ReadFile(filepath.Join(w.dir, "usrsvcd.pid"))
	require.NoError(w.t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	require.NoError(w.t, err)
	return pid
}

func (w *dworld) log() string {
	data, _ := os.ReadFile(filepath.Join(w.dir, "usrsvcd.log"))
	return string(data)
}

func pidAlive(pid int) bool { return testproc.Alive(pid) }

func waitFor(t *testing.T, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	testproc.WaitFor(t, d, cond, msg)
}

func onePID(t *testing.T, h *testproc.Helper) int {
	var pid int
	waitFor(t, 10*time.Second, func() bool {
		pids := h.PIDs()
		if len(pids) == 1 {
			pid = pids[0]
			return true
		}
		return false
	}, "one process of "+h.Token)
	return pid
}

func TestDaemonLifecycle(t *testing.T) {
	t.Parallel()
	a := testproc.New(t, "sleep")
	b := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("a", a.CommandLine()), dprogram("b", b.CommandLine()))

	code, _ := w.usrsvcd("status")
	assert.Equal(t, 1, code, "not running")
	code, out := w.usrsvcd("reread")
	assert.Equal(t, 1, code, "reread without a daemon: "+out)

	dpid := w.startDaemon()
	code, out = w.usrsvcd("start")
	assert.Equal(t, 135, code, out)
	code, out = w.usrsvcd("status")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, strconv.Itoa(dpid))
	pa, pb := onePID(t, a), onePID(t, b)

	// The programs are not the daemon's children, nor in its session.
	stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pa))
	f := strings.Fields(string(stat)[strings.LastIndexByte(string(stat), ')')+1:])
	assert.NotEqual(t, strconv.Itoa(dpid), f[1])

	// kill -9 of the daemon, start again: zero restarts, same pids.
	require.NoError(t, syscall.Kill(dpid, syscall.SIGKILL))
	waitFor(t, 5*time.Second, func() bool { return !pidAlive(dpid) }, "daemon killed")
	assert.True(t, pidAlive(pa) && pidAlive(pb), "programs survive kill -9 of usrsvcd")
	dpid = w.startDaemon() // up: it has resolved (adopted) every program
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(w.log(), "a adopted") && strings.Contains(w.log(), "b adopted")
	}, "the new daemon adopts both")
	assert.Equal(t, []int{pa}, a.PIDs())
	assert.Equal(t, []int{pb}, b.PIDs())

	// A killed program comes back.
	require.NoError(t, syscall.Kill(pa, syscall.SIGKILL))
	waitFor(t, 10*time.Second, func() bool { p := a.PIDs(); return len(p) == 1 && p[0] != pa }, "a restarted")
	pa = onePID(t, a)

	// reread: broken config → 130, nothing sent, daemon alive; raw SIGUSR1 too.
	good, _ := os.ReadFile(w.cfg)
	require.NoError(t, os.WriteFile(w.cfg, append(good, []byte("\n[Program:bad]\ncomand = x\n")...), 0o644))
	code, out = w.usrsvcd("reread")
	assert.Equal(t, 130, code, out)
	require.NoError(t, syscall.Kill(dpid, syscall.SIGUSR1))
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(w.log(), "reload failed") }, "the daemon logs the broken reread")
	assert.True(t, pidAlive(dpid))
	require.NoError(t, syscall.Kill(pb, syscall.SIGKILL))
	waitFor(t, 10*time.Second, func() bool { p := b.PIDs(); return len(p) == 1 && p[0] != pb }, "b restarted under the old config")
	pb = onePID(t, b)

	require.NoError(t, os.WriteFile(w.cfg, good, 0o644))
	code, out = w.usrsvcd("reread")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "reread the configuration")

	// restart and stop: programs untouched.
	code, out = w.usrsvcd("restart")
	require.Equal(t, 0, code, out)
	newPID := w.daemonPID()
	assert.NotEqual(t, dpid, newPID)
	t.Cleanup(func() { syscall.Kill(newPID, syscall.SIGKILL) })
	code, out = w.usrsvcd("stop")
	assert.Equal(t, 0, code, out)
	assert.False(t, pidAlive(newPID))
	_, err := os.Stat(filepath.Join(w.dir, "usrsvcd.pid"))
	assert.True(t, os.IsNotExist(err), "pidfile removed")
	assert.Equal(t, []int{pa}, a.PIDs())
	assert.Equal(t, []int{pb}, b.PIDs())
	code, _ = w.usrsvcd("stop")
	assert.Equal(t, 0, code, "stop without a daemon is fine")
}

// usrsvcd start | cat returns: the daemon keeps nothing of the caller's pipe.
func TestDaemonStartThroughPipe(t *testing.T) {
	t.Parallel()
	w := newDWorld(t)
	cmd := exec.Command(os.Args[0], "--config", w.cfg, "start")
	cmd.Env = append(os.Environ(), asMain+"=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("usrsvcd start | cat does not return")
	}
	require.NoError(t, cmd.Wait())
	pid := w.daemonPID()
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	code, _ := w.usrsvcd("stop")
	assert.Equal(t, 0, code)
}

// --foreground speaks systemd's notify protocol and NOTIFY_SOCKET never
// reaches the programs; SIGTERM → exit 0, pidfile removed.
func TestDaemonForegroundNotify(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("a", h.CommandLine()))
	sock := filepath.Join(w.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()

	cmd := exec.Command(os.Args[0], "--config", w.cfg, "--foreground", "start")
	cmd.Env = append(os.Environ(), asMain+"=1", "NOTIFY_SOCKET="+sock)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	expect := func(prefix string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.HasPrefix(m, prefix) {
					return
				}
			case <-deadline:
				t.Fatalf("no %s notification", prefix)
			}
		}
	}
	expect("READY=1")
	pid := onePID(t, h)
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	assert.NotContains(t, string(env), "NOTIFY_SOCKET")
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	expect("RELOADING=1")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	expect("STOPPING=1")
	require.NoError(t, cmd.Wait(), "exit 0 on SIGTERM")
	_, err = os.Stat(filepath.Join(w.dir, "usrsvcd.pid"))
	assert.True(t, os.IsNotExist(err))
	assert.True(t, pidAlive(pid), "programs keep running")
}

// log_format = json: one JSON object per line with program and event;
// SIGUSR2 reopens the log file (logrotate).
func TestDaemonJSONLogsAndReopen(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("a", h.CommandLine()))
	text, _ := os.ReadFile(w.cfg)
	require.NoError(t, os.WriteFile(w.cfg, []byte(strings.Replace(string(text), "[Main]\n", "[Main]\nlog_format = json\n", 1)), 0o644))
	dpid := w.startDaemon()
	pid := onePID(t, h)
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(w.log(), `"event":"started"`) }, "started logged")

	logPath := filepath.Join(w.dir, "usrsvcd.log")
	require.NoError(t, os.Rename(logPath, logPath+".1"))
	require.NoError(t, syscall.Kill(dpid, syscall.SIGUSR2))
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(w.log(), "log files reopened") }, "a new log file")
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(w.log(), `"event":"exited"`) }, "the exit in the new file")

	old, _ := os.ReadFile(logPath + ".1")
	for _, line := range strings.Split(strings.TrimSpace(string(old)+w.log()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		for _, k := range []string{"time", "level", "msg"} {
			assert.Contains(t, rec, k, line)
		}
		if ev, _ := rec["event"].(string); ev == "exited" {
			assert.Equal(t, "a", rec["program"])
			assert.EqualValues(t, pid, rec["pid"])
			if sig, ok := rec["signal"]; ok { // known unless its parent reaped it first
				assert.EqualValues(t, 9, sig)
			}
		}
	}
	code, _ := w.usrsvcd("stop")
	assert.Equal(t, 0, code)
}

// The state directory removed under a running usrsvcd: usrsvcd status still
// finds it and start refuses (135), through its pidfile and the lock it
// still holds, even while it cannot recreate the directory (stopped here
// with SIGSTOP); then it recreates the directory and takes a new lock.
func TestStateDirRemovedUnderDaemon(t *testing.T) {
	t.Parallel()
	a := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("a", a.CommandLine()))
	dpid := w.startDaemon()
	pa := onePID(t, a)
	state := filepath.Join(w.dir, "state")

	require.NoError(t, syscall.Kill(dpid, syscall.SIGSTOP))
	t.Cleanup(func() { syscall.Kill(dpid, syscall.SIGCONT) })
	require.NoError(t, os.RemoveAll(state))
	code, out := w.usrsvcd("status")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, fmt.Sprintf("usrsvcd is running (pid %d)", dpid))
	code, out = w.usrsvcd("start")
	assert.Equal(t, 135, code, "no second daemon beside the live one: %s", out)
	assert.Contains(t, out, strconv.Itoa(dpid))

	require.NoError(t, syscall.Kill(dpid, syscall.SIGCONT))
	waitFor(t, 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(state, "usrsvcd.lock"))
		return err == nil && strings.Contains(w.log(), "recreated it and took the daemon lock again")
	}, "the daemon recreates its state directory")
	code, out = w.usrsvcd("status")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, strconv.Itoa(dpid))
	code, out = w.usrsvcd("start")
	assert.Equal(t, 135, code, out)
	// Supervision went on.
	require.NoError(t, syscall.Kill(pa, syscall.SIGKILL))
	waitFor(t, 10*time.Second, func() bool { p := a.PIDs(); return len(p) == 1 && p[0] != pa }, "a restarted")
	assert.True(t, pidAlive(dpid))
}

// A daemon that cannot write its pidfile does not stay up unseen (no
// usrsvcd stop or status could find it): usrsvcd start fails with the
// reason, and no daemon runs.
func TestDaemonWithoutPidfileStops(t *testing.T) {
	t.Parallel()
	w := newDWorld(t)
	require.NoError(t, os.Mkdir(filepath.Join(w.dir, "usrsvcd.pid"), 0o700)) // a directory: no file can be written there
	code, out := w.usrsvcd("start")
	assert.NotEqual(t, 0, code, out)
	assert.Contains(t, out, "writing usrsvcd's pidfile "+filepath.Join(w.dir, "usrsvcd.pid"))
	assert.NotContains(t, out, "usrsvcd started")
	waitFor(t, 10*time.Second, func() bool {
		code, _ := w.usrsvcd("status")
		return code != 0
	}, "no daemon runs")
	assert.Contains(t, w.log(), "usrsvcd stops, the programs keep running")
}
