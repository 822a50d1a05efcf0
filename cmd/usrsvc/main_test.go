package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/manual"
	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/statedir"
	"github.com/usrsvc/usrsvc/internal/testproc"
	"github.com/usrsvc/usrsvc/internal/version"
)

// The test binary is also usrsvc when asked: tests run it as a real command.
const asMain = "USRSVC_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	testproc.Main()
	if os.Getenv(asMain) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type world struct {
	t   *testing.T
	dir string
	cfg string
}

func newWorld(t *testing.T, programs string) *world {
	dir := t.TempDir()
	w := &world{t: t, dir: dir, cfg: filepath.Join(dir, "usrsvc.cfg")}
	text := fmt.Sprintf("[Main]\npidfile = %s/usrsvcd.pid\nstate_dir = %s/state\n\n", dir, dir)
	text += strings.ReplaceAll(programs, "DIR", dir)
	require.NoError(t, os.WriteFile(w.cfg, []byte(text), 0o644))
	return w
}

func program(name, command string, extra ...string) string {
	rest := strings.Join(extra, "\n")
	if !strings.Contains(rest, "success_seconds") {
		rest = "success_seconds = 0.3\n" + rest
	}
	return fmt.Sprintf("[Program:%s]\ncommand = %s\npidfile = DIR/%s.pid\nstdout = DIR/%s.log\n%s\n",
		name, command, name, name, rest)
}

func (w *world) run(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"--config", w.cfg}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUsageAndCodes(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	assert.Equal(t, 138, run(nil, &out, &errb), "bare usrsvc prints usage")
	assert.Contains(t, errb.String(), "usage: usrsvc")
	assert.Empty(t, out.String())
	for _, h := range []string{"--help", "-h", "help", "status --help"} {
		out.Reset()
		errb.Reset()
		assert.Equal(t, 0, run(strings.Fields(h), &out, &errb), h)
		assert.Contains(t, out.String(), "start|stop|restart|reload|status", h)
		assert.Empty(t, errb.String(), h)
	}
	out.Reset()
	assert.Equal(t, 0, run([]string{"--version"}, &out, &errb))
	assert.Contains(t, out.String(), version.Version)
	out.Reset()
	assert.Equal(t, 0, run([]string{"--readme"}, &out, &errb))
	assert.Equal(t, manual.README, out.String())

	w := newWorld(t, program("webserver", "sleep 1000")+program("off", "sleep 1000", "enabled = false"))
	code, _, stderr := w.run("jump", "webserver")
	assert.Equal(t, 131, code)
	assert.Contains(t, stderr, "unknown action")
	code, _, stderr = w.run("strat", "webserver")
	assert.Equal(t, 131, code)
	assert.Contains(t, stderr, `usrsvc: unknown action "strat"; did you mean start?`)
	code, _, stderr = w.run("--jsno", "status", "webserver")
	assert.Equal(t, 131, code)
	assert.Contains(t, stderr, `usrsvc: unknown option --jsno; did you mean --json?`)
	code, _, stderr = w.run("-f", "status", "webserver")
	assert.Equal(t, 131, code)
	assert.Contains(t, stderr, `usrsvc: --follow goes with tail, not status`)
	code, _, stderr = w.run("--table", "--json", "status", "all")
	assert.Equal(t, 131, code)
	assert.Contains(t, stderr, `--table and --json exclude each other`)
	code, _, _ = w.run("start")
	assert.Equal(t, 131, code, "missing NAME")
	code, _, stderr = w.run("start", "websrvr")
	assert.Equal(t, 133, code)
	assert.Contains(t, stderr, `did you mean "webserver"`)
	code, _, _ = w.run("start", "off")
	assert.Equal(t, 132, code)
	code, _, _ = w.run("status", "webserver")
	assert.Equal(t, 1, code, "not running")

	var o2, e2 bytes.Buffer
	code = run([]string{"--config", filepath.Join(t.TempDir(), "nope.cfg"), "status", "all"}, &o2, &e2)
	assert.Equal(t, 130, code)
	assert.Contains(t, e2.String(), "nope.cfg")
}

func TestStartStatusStopJSON(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	crash := testproc.New(t, "exit-after", "20ms", "4", "--stderr=boom")
	// crash exits 20 ms after its start; a long window only bounds a
	// starved machine (the chaos suite's CPU hogs may run meanwhile): a
	// start returns as soon as the tree is gone.
	w := newWorld(t, program("app", h.CommandLine())+program("crash", crash.CommandLine(), "success_seconds = 20")+
		program("off", "sleep 1000", "enabled = false"))

	code, stdout, stderr := w.run("--json", "start", "app")
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 1, "exactly one JSON object per program")
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec))
	for _, k := range []string{"time", "program", "action", "code", "code_name", "running", "pid", "started_at", "cmdline", "executable", "args", "message"} {
		assert.Contains(t, rec, k)
	}
	assert.Equal(t, "SUCCESS", rec["code_name"])
	assert.Equal(t, true, rec["running"])
	_, err := time.Parse(time.RFC3339, rec["started_at"].(string))
	assert.NoError(t, err)

	code, stdout, _ = w.run("--json", "status", "all")
	assert.Equal(t, 1, code, "crash is not running")
	lines = strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 3)
	var names []string
	for _, l := range lines {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &r), l)
		names = append(names, r["program"].(string))
		if r["running"] == false {
			assert.NotContains(t, r, "pid", "absent, not null")
			assert.NotContains(t, r, "started_at")
		}
	}
	assert.Equal(t, []string{"app", "crash", "off"}, names, "name order")

	code, _, stderr = w.run("start", "crash")
	assert.Equal(t, 134, code)
	assert.Contains(t, stderr, "exited with status 4")
	assert.Contains(t, stderr, "| boom")

	code, stdout, _ = w.run("start", "all")
	assert.Equal(t, 1, code, "one failed")
	assert.Contains(t, stdout, "app is already running")

	code, stdout, _ = w.run("stop", "app")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "Stopped app")
	assert.Empty(t, h.PIDs())
}

// usrsvc start x | cat returns at once: the program keeps nothing of usrsvc's stdout.
func TestBinaryStartThroughPipeReturns(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	w := newWorld(t, program("app", h.CommandLine()))
	cmd := exec.Command(os.Args[0], "--config", w.cfg, "start", "app")
	cmd.Env = append(os.Environ(), asMain+"=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		done <- b.String()
	}()
	select {
	case out := <-done:
		assert.Contains(t, out, "Started app")
	case <-time.After(20 * time.Second):
		t.Fatal("the pipe stayed open: the program inherited usrsvc's stdout")
	}
	require.NoError(t, cmd.Wait())
	assert.Len(t, h.PIDs(), 1)
}

// The README's first command: the demo runs to completion and leaves
// nothing behind.
func TestDemo(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "--demo")
	cmd.Env = append(os.Environ(), asMain+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	text := string(out)
	for _, want := range []string{"all programs up", "killed → new web", "same pid ✓", "programs keep their pids: yes ✓", "terminated"} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "✗")
	// Every program it showed is gone.
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && (f[0] == "web" || f[0] == "worker" || f[0] == "forker") && f[len(f)-2] == "sleep" {
			pid := f[1]
			data, err := os.ReadFile("/proc/" + pid + "/cmdline")
			if err == nil {
				assert.NotContains(t, string(data), f[len(f)-1], "the demo left %s running", line)
			}
		}
	}
	// Its own daemon (other tests, or other checkouts' tests, run demos too).
	dir := regexp.MustCompile(`Working in (\S*usrsvc-demo-\S+) `).FindStringSubmatch(text)
	require.Len(t, dir, 2, "the demo names its directory")
	assert.Empty(t, testproc.PIDsMatching(dir[1]), "no demo daemon left")
}

// runWithin runs the test binary as usrsvc and fails the test (after
// killing it) when it does not return within d.
func (w *world) runWithin(d time.Duration, args ...string) (int, string, string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"--config", w.cfg}, args...)...)
	cmd.Env = append(os.Environ(), asMain+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		w.t.Fatalf("usrsvc %v did not return within %v: %s%s", args, d, stdout.String(), stderr.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// A FIFO where a config file or a pidfile is expected never blocks usrsvc:
// a FIFO named *.cfg is refused at once (130), a FIFO pidfile is stale.
func TestFIFOsNeverBlock(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "config_dir = cfg\n"+program("app", "sleep 1000"))
	// config_dir belongs in [Main]: move it up.
	text, _ := os.ReadFile(w.cfg)
	s := strings.Replace(string(text), "\nconfig_dir = cfg\n", "\n", 1)
	s = strings.Replace(s, "[Main]\n", "[Main]\nconfig_dir = cfg\n", 1)
	require.NoError(t, os.WriteFile(w.cfg, []byte(s), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(w.dir, "cfg"), 0o755))
	require.NoError(t, syscall.Mkfifo(filepath.Join(w.dir, "app.pid"), 0o600))

	code, stdout, stderr := w.runWithin(10*time.Second, "status", "app")
	assert.Equal(t, 1, code, stdout+stderr)
	assert.Contains(t, stderr, "stale pidfile")

	require.NoError(t, syscall.Mkfifo(filepath.Join(w.dir, "cfg", "zz.cfg"), 0o600))
	code, _, stderr = w.runWithin(10*time.Second, "status", "all")
	assert.Equal(t, 1, code, "status acts on what reads (app is not running); the FIFO is a warning: "+stderr)
	assert.Contains(t, stderr, "warning: "+filepath.Join(w.dir, "cfg", "zz.cfg")+": not a regular file")
}

// usrsvc ... | head: a closed stdout never turns the outcome into death by
// SIGPIPE; the exit code is the action's.
func TestClosedStdoutKeepsTheCode(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	w := newWorld(t, program("app", h.CommandLine()))
	run := func(args ...string) int {
		r, wp, err := os.Pipe()
		require.NoError(t, err)
		r.Close()
		defer wp.Close()
		cmd := exec.Command(os.Args[0], append([]string{"--config", w.cfg}, args...)...)
		cmd.Env = append(os.Environ(), asMain+"=1")
		cmd.Stdout = wp
		err = cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			require.True(t, ee.Exited(), "usrsvc %v: %v", args, err)
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	}
	assert.Equal(t, 1, run("status", "app"), "not running")
	assert.Equal(t, 0, run("start", "app"))
	assert.Equal(t, 0, run("status", "all"))
	assert.Len(t, h.PIDs(), 1)
}

// Disk full (a real small tmpfs holding the state directory; root only):
// usrsvc stop and restart refuse with the real cause and code 11, not
// "136 insufficient permissions", and change nothing; status still
// answers; once space is freed they work.
func TestDiskFullStopRestart(t *testing.T) {
	t.Parallel()
	disk := testproc.Tmpfs(t, 512<<10)
	h := testproc.New(t, "sleep")
	w := newWorld(t, program("app", h.CommandLine()))
	text, _ := os.ReadFile(w.cfg)
	require.NoError(t, os.WriteFile(w.cfg, []byte(strings.Replace(string(text),
		"state_dir = "+w.dir+"/state", "state_dir = "+disk+"/state", 1)), 0o644))
	code, _, stderr := w.run("start", "app")
	require.Equal(t, 0, code, stderr)
	pid := onlyPID(t, h)

	free := testproc.Fill(t, disk)
	for _, action := range []string{"stop", "restart"} {
		code, stdout, stderr := w.run(action, "app")
		assert.Equal(t, 11, code, "%s: %s%s", action, stdout, stderr)
		assert.Contains(t, stderr, "TRY_AGAIN")
		assert.Contains(t, stderr, "no space left on device (ENOSPC)", action)
		assert.Contains(t, stderr, disk+"/state/programs/app.manual.json", action)
		assert.NotContains(t, stderr, "insufficient permissions", action)
		assert.Equal(t, []int{pid}, h.PIDs(), "%s changed nothing", action)
	}
	code, stdout, stderr := w.run("status", "app")
	assert.Equal(t, 0, code, stdout+stderr)

	free()
	code, _, stderr = w.run("stop", "app")
	assert.Equal(t, 0, code, stderr)
	assert.Empty(t, h.PIDs())
}

func onlyPID(t *testing.T, h *testproc.Helper) int {
	t.Helper()
	pids := h.PIDs()
	require.Len(t, pids, 1)
	return pids[0]
}

// A program name too long for the state directory: start, stop and status
// of it say 130 with the problem, as checkconfig does; the other programs
// are not disturbed.
func TestProgramNameTooLong(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("n", 300)
	h := testproc.New(t, "sleep")
	w := newWorld(t, program(long, "/bin/sleep 1")+program("app", h.CommandLine()))
	for _, action := range []string{"start", "stop", "status"} {
		code, _, stderr := w.run(action, long)
		assert.Equal(t, 130, code, "%s: %s", action, stderr)
		assert.Contains(t, stderr, "program name is 300 characters long; at most 100 fit", action)
	}
	code, _, stderr := w.run("start", "app")
	assert.Equal(t, 0, code, stderr)
	assert.Len(t, h.PIDs(), 1)
}

// A program removed from the configuration that still runs, as usrsvcd
// records it, is listed by status all and status NAME, human and JSON.
func TestStatusListsRemovedPrograms(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	extra := testproc.New(t, "sleep")
	pid := extra.Detach(t)
	w := newWorld(t, program("app", h.CommandLine()))
	p, err := proc.Default().Stat(pid)
	require.NoError(t, err)
	require.NoError(t, statedir.Dir(filepath.Join(w.dir, "state")).WriteRecord(&statedir.Record{Program: "extra",
		State: "removed", PID: pid, StartTicks: p.StartTicks, Updated: time.Now(), Reason: "removed from the configuration, still running"}))

	code, stdout, stderr := w.run("status", "all")
	assert.Equal(t, 1, code, "app does not run: %s", stderr)
	assert.Contains(t, stdout, fmt.Sprintf("extra: removed from the configuration, still running (pid %d):", pid))
	code, stdout, _ = w.run("--json", "status", "extra")
	assert.Equal(t, 0, code)
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &rec), stdout)
	assert.Equal(t, "removed", rec["state"])
	assert.Equal(t, float64(pid), rec["pid"])
	code, _, stderr = w.run("stop", "extra")
	assert.Equal(t, 133, code)
	assert.Contains(t, stderr, fmt.Sprintf("stop it with kill %d", pid))
}

// A program in backoff shows its next try, in JSON and in words.
func TestStatusShowsNextTry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, program("app", "/bin/sleep 123456.789"))
	sd := statedir.Dir(filepath.Join(w.dir, "state"))
	lock, _, err := sd.TakeDaemonLock("") // as a running usrsvcd would
	require.NoError(t, err)
	defer lock.Close()
	next := time.Now().Add(30 * time.Second).Truncate(time.Second)
	require.NoError(t, sd.WriteRecord(&statedir.Record{Program: "app", State: "backoff", Restarts: 2,
		NextTry: next, Updated: time.Now(), Reason: "crash loop"}))
	code, stdout, _ := w.run("--json", "status", "app")
	assert.Equal(t, 1, code)
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &rec), stdout)
	assert.Equal(t, "backoff", rec["state"])
	assert.Equal(t, next.Format(time.RFC3339), rec["next_try"])
	_, stdout, _ = w.run("status", "app")
	assert.Contains(t, stdout, "state: backoff (next try "+next.Format("15:04:05")+")")
}
