package main

import (
	"bufio"
	"context"
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
	dpid = w.startDaemon()
	time.Sleep(500 * time.Millisecond)
	assert.Equal(t, []int{pa}, a.PIDs())
	assert.Equal(t, []int{pb}, b.PIDs())
	assert.Contains(t, w.log(), "a adopted")

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

// usrsvcdWithin runs the test binary as usrsvcd and fails the test (after
// killing it) when it does not return within d.
func (w *dworld) usrsvcdWithin(d time.Duration, args ...string) (int, string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"--config", w.cfg}, args...)...)
	cmd.Env = append(os.Environ(), asMain+"=1")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		w.t.Fatalf("usrsvcd %v did not return within %v: %s", args, d, out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	return code, string(out)
}

// A FIFO named *.cfg in config_dir is refused at once as "not a regular
// file" (130) by checkconfig, reread and the daemon's own reread; no tool
// and no daemon thread blocks opening it.
func TestConfigFIFO(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("a", h.CommandLine()))
	text, _ := os.ReadFile(w.cfg)
	require.NoError(t, os.WriteFile(w.cfg, []byte(strings.Replace(string(text), "[Main]\n", "[Main]\nconfig_dir = cfg\n", 1)), 0o644))
	cfgDir := filepath.Join(w.dir, "cfg")
	require.NoError(t, os.Mkdir(cfgDir, 0o755))
	dpid := w.startDaemon()
	onePID(t, h)

	fifo := filepath.Join(cfgDir, "zz.cfg")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	code, out := w.usrsvcdWithin(10*time.Second, "checkconfig")
	assert.Equal(t, 130, code, out)
	assert.Contains(t, out, "zz.cfg: not a regular file")
	code, out = w.usrsvcdWithin(10*time.Second, "reread")
	assert.Equal(t, 130, code, out)
	assert.Contains(t, out, "zz.cfg: not a regular file")

	// The daemon's own reread (a raw SIGUSR1) refuses it and stays responsive.
	require.NoError(t, syscall.Kill(dpid, syscall.SIGUSR1))
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(w.log(), "zz.cfg: not a regular file") },
		"the daemon logs the refused reread")
	w.usrsvcdWithin(10*time.Second, "status")
	w.usrsvcdWithin(10*time.Second, "stop")
	require.NoError(t, os.Remove(fifo))
	code, out = w.usrsvcdWithin(30*time.Second, "stop")
	assert.Equal(t, 0, code, out)
	assert.False(t, pidAlive(dpid), "the daemon answered SIGTERM: no thread of it sits in the FIFO")
	assert.Len(t, h.PIDs(), 1, "the program keeps running")
}

// checkconfig and start agree on program names: a name too long for the
// state directory's file names is a config error (130, file:line), and the
// longest accepted name is started, recorded and locked like any other.
func TestProgramNameLength(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	long := strings.Repeat("n", 300)
	w := newDWorld(t, dprogram(long, h.CommandLine()))
	code, out := w.usrsvcdWithin(10*time.Second, "checkconfig")
	assert.Equal(t, 130, code, out)
	assert.Contains(t, out, w.cfg+":6: program name is 300 characters long; at most 100 fit")
	code, out = w.usrsvcdWithin(10*time.Second, "start")
	if !assert.Equal(t, 130, code, out) && code == 0 {
		w.usrsvcd("stop")
	}

	longest := strings.Repeat("n", 100)
	w.write(dprogram(longest, h.CommandLine()))
	code, out = w.usrsvcdWithin(10*time.Second, "checkconfig")
	require.Equal(t, 0, code, out)
	w.startDaemon()
	pid := onePID(t, h)
	rec := filepath.Join(w.dir, "state", "programs", longest+".daemon.json")
	waitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(rec)
		return strings.Contains(string(data), `"state":"running"`) && strings.Contains(string(data), strconv.Itoa(pid))
	}, "the daemon records the program")
	assert.FileExists(t, filepath.Join(w.dir, "state", "locks", longest+".lock"))
	assert.NotContains(t, w.log(), "level=ERROR")
	code, out = w.usrsvcdWithin(30*time.Second, "stop")
	assert.Equal(t, 0, code, out)
}

// Concurrent `usrsvcd start`s: exactly one daemon; every loser exits 135
// naming the pid of the daemon that runs, never 254.
func TestConcurrentDaemonStarts(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("a", h.CommandLine()))
	for round := 0; round < 3; round++ {
		const n = 3
		type result struct {
			code int
			out  string
		}
		results := make(chan result, n)
		for i := 0; i < n; i++ {
			go func() {
				cmd := exec.Command(os.Args[0], "--config", w.cfg, "start")
				cmd.Env = append(os.Environ(), asMain+"=1")
				out, err := cmd.CombinedOutput()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					code = -1
				}
				results <- result{code, string(out)}
			}()
		}
		var all []result
		for i := 0; i < n; i++ {
			all = append(all, <-results)
		}
		var dpid int
		if data, err := os.ReadFile(filepath.Join(w.dir, "usrsvcd.pid")); err == nil {
			dpid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		}
		if dpid > 0 {
			t.Cleanup(func() {
				if pidAlive(dpid) {
					syscall.Kill(dpid, syscall.SIGKILL)
				}
			})
		}
		winners := 0
		for _, r := range all {
			switch r.code {
			case 0:
				winners++
			case 135:
				assert.Contains(t, r.out, fmt.Sprintf("usrsvcd is already running (pid %d)", dpid), "round %d", round)
			default:
				t.Errorf("round %d: a concurrent start exited %d: %s", round, r.code, r.out)
			}
		}
		assert.Equal(t, 1, winners, "round %d: %v", round, all)
		assert.Len(t, testproc.PIDsMatching("usrsvcd --config "+w.cfg), 1, "round %d: one daemon", round)
		code, out := w.usrsvcdWithin(30*time.Second, "stop")
		require.Equal(t, 0, code, out)
	}
	assert.Len(t, h.PIDs(), 1)
}

// SIGQUIT: a goroutine dump in the log, then the shutdown of SIGTERM
// (pidfile removed, programs untouched).
func TestDaemonSIGQUIT(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("a", h.CommandLine()))
	dpid := w.startDaemon()
	pid := onePID(t, h)
	require.NoError(t, syscall.Kill(dpid, syscall.SIGQUIT))
	waitFor(t, 15*time.Second, func() bool { return !pidAlive(dpid) }, "the daemon exits on SIGQUIT")
	log := w.log()
	assert.Contains(t, log, "goroutine ", "the stack dump is in the log")
	assert.Contains(t, log, "received SIGQUIT")
	assert.NoFileExists(t, filepath.Join(w.dir, "usrsvcd.pid"), "the pidfile is removed")
	assert.Equal(t, []int{pid}, h.PIDs(), "the program keeps running")
	code, out := w.usrsvcdWithin(10*time.Second, "status")
	assert.Equal(t, 1, code, out)
}

// A closed stdout (usrsvcd start | true) does not turn a good start into
// death by SIGPIPE: the client returns the real outcome.
func TestDaemonStartToClosedPipe(t *testing.T) {
	t.Parallel()
	w := newDWorld(t)
	r, wp, err := os.Pipe()
	require.NoError(t, err)
	r.Close()
	cmd := exec.Command(os.Args[0], "--config", w.cfg, "start")
	cmd.Env = append(os.Environ(), asMain+"=1")
	cmd.Stdout = wp
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	wp.Close()
	if data, err := os.ReadFile(filepath.Join(w.dir, "usrsvcd.pid")); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid > 0 {
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		}
	}
	require.NoError(t, err, "usrsvcd start | true: %v %s", cmd.ProcessState, stderr.String())
	code, out := w.usrsvcdWithin(10*time.Second, "status")
	assert.Equal(t, 0, code, out)
	code, out = w.usrsvcdWithin(30*time.Second, "stop")
	assert.Equal(t, 0, code, out)
}

// Disk full (the state directory on a small tmpfs; root only): usrsvcd
// reread says at once that the acknowledgement cannot be written, with the
// cause and code 11, instead of waiting 10 s for it.
func TestRereadDiskFull(t *testing.T) {
	t.Parallel()
	disk := testproc.Tmpfs(t, 512<<10)
	h := testproc.New(t, "sleep")
	w := newDWorld(t, dprogram("a", h.CommandLine()))
	text, _ := os.ReadFile(w.cfg)
	require.NoError(t, os.WriteFile(w.cfg, []byte(strings.Replace(string(text),
		"state_dir = "+w.dir+"/state", "state_dir = "+disk+"/state", 1)), 0o644))
	w.startDaemon()
	onePID(t, h)
	free := testproc.Fill(t, disk)
	start := time.Now()
	code, out := w.usrsvcdWithin(30*time.Second, "reread")
	assert.Less(t, time.Since(start), 5*time.Second, "answers at once: %s", out)
	assert.Equal(t, 11, code, out)
	assert.Contains(t, out, "acknowledgement cannot be written")
	assert.Contains(t, out, "no space left on device (ENOSPC)")
	free()
	code, out = w.usrsvcdWithin(30*time.Second, "reread")
	assert.Equal(t, 0, code, out)
	code, out = w.usrsvcdWithin(30*time.Second, "stop")
	assert.Equal(t, 0, code, out)
}
