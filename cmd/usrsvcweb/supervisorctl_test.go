package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/testproc"
	"github.com/usrsvc/usrsvc/internal/version"
)

// These tests drive Debian's unmodified supervisorctl (package supervisor)
// and Python's xmlrpc.client against a real usrsvcweb process (this test
// binary run as usrsvcweb), over the unix socket and over TCP with a
// password. Without supervisorctl they skip, except under CI=true, where
// .ci/run installs it and its absence is a failure.

// needTool returns the path of an external program the test drives.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: .ci/run installs it (apt-get install supervisor python3)", name)
		}
		t.Skipf("%s is not installed (apt-get install supervisor)", name)
	}
	return p
}

// webWorld is a config with a few real programs and a running usrsvcweb.
type webWorld struct {
	t          *testing.T
	dir, cfg   string
	state      string
	url        string // supervisorctl -s URL
	user, pass string
	web        *exec.Cmd
	webLog     *testproc.Buffer
	tokens     map[string]string // program → token in its command line
}

// talkScript writes a line to stdout and to stderr every 0.1 s, for at
// least ten minutes (its test kills it by its token when it ends).
const talkScript = `i=0
while [ $i -lt 6000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.1; done
`

// newWebWorld writes the config (web: the [Web] lines) and starts
// usrsvcweb. tcp: listen on 127.0.0.1 with a password.
func newWebWorld(t *testing.T, tcp bool, webLines ...string) *webWorld {
	t.Helper()
	dir := t.TempDir()
	w := &webWorld{t: t, dir: dir, cfg: filepath.Join(dir, "usrsvc.cfg"), state: filepath.Join(dir, "state"),
		tokens: map[string]string{}}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "talk.sh"), []byte(talkScript), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "usrsvcd.log"), []byte("usrsvcd line 1\nusrsvcd line 2\n"), 0o600))
	web := strings.Join(webLines, "\n")
	if tcp {
		w.user, w.pass = "admin", "s3 cret 42"
		web = "listen = 127.0.0.1:0\nusername = admin\npassword = s3 cret 42\n" + web
	}
	// The whole command list takes minutes on a loaded machine: the
	// helpers live longer than their default two minutes.
	sleeper := testproc.New(t, "sleep").WithDeadline(10 * time.Minute)
	idle := testproc.New(t, "sleep").WithDeadline(10 * time.Minute)
	w.tokens["sleeper"], w.tokens["idle"] = sleeper.Token, idle.Token
	w.tokens["talker"] = "talk-" + strings.TrimPrefix(sleeper.Token, "tp-sleep-") // unique, like the helpers' tokens
	t.Cleanup(func() { testproc.KillToken(w.tokens["talker"]) })
	w.writeConfig(web,
		program("sleeper", sleeper.CommandLine()),
		program("talker", "/bin/sh "+dir+"/talk.sh "+w.tokens["talker"], "stderr = DIR/talker.err"),
		program("idle", idle.CommandLine(), "autostart = false"),
		program("broken", "/nonexistent/program", "autostart = false"))
	w.startWeb()
	return w
}

func program(name, command string, extra ...string) string {
	return fmt.Sprintf("[Program:%s]\ncommand = %s\npidfile = DIR/%s.pid\nstdout = DIR/%s.log\nsuccess_seconds = 0.3\nterm_to_kill_seconds = 3\n%s\n",
		name, command, name, name, strings.Join(extra, "\n"))
}

func (w *webWorld) writeConfig(web string, programs ...string) {
	text := fmt.Sprintf("[Main]\npidfile = %[1]s/usrsvcd.pid\nstate_dir = %[1]s/state\nusrsvcd_stdout = %[1]s/usrsvcd.log\n[Web]\n%s\n",
		w.dir, web)
	for _, p := range programs {
		text += strings.ReplaceAll(p, "DIR", w.dir)
	}
	require.NoError(w.t, os.WriteFile(w.cfg, []byte(text), 0o600))
}

var listeningRE = regexp.MustCompile(`msg="usrsvcweb listening" listen=(\S+)`)

func (w *webWorld) startWeb() {
	t := w.t
	exe, err := os.Executable()
	require.NoError(t, err)
	w.webLog = &testproc.Buffer{}
	cmd := exec.Command(exe, "--config", w.cfg)
	cmd.Env = append(os.Environ(), asMain+"=1", "HOME="+w.dir)
	cmd.Stdout, cmd.Stderr = w.webLog, w.webLog
	require.NoError(t, cmd.Start())
	w.web = cmd
	t.Cleanup(func() { w.stopWeb() })
	testproc.WaitFor(t, 30*time.Second, func() bool { return listeningRE.MatchString(w.webLog.String()) },
		"usrsvcweb listens")
	addr := listeningRE.FindStringSubmatch(w.webLog.String())[1]
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		w.url = "unix://" + p
	} else {
		w.url = "http://" + addr
	}
}

// stopWeb sends SIGTERM and returns usrsvcweb's exit code and how long it took.
func (w *webWorld) stopWeb() (int, time.Duration) {
	if w.web == nil || w.web.ProcessState != nil {
		return -1, 0
	}
	t0 := time.Now()
	w.web.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- w.web.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		w.web.Process.Kill()
		<-done
		w.t.Errorf("usrsvcweb did not stop on SIGTERM")
	}
	return w.web.ProcessState.ExitCode(), time.Since(t0)
}

// ctl runs supervisorctl with args and returns its output (stdout and
// stderr) and exit code.
func (w *webWorld) ctl(args ...string) (string, int) {
	w.t.Helper()
	full := []string{"-s", w.url}
	if w.user != "" {
		full = append(full, "-u", w.user, "-p", w.pass)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "supervisorctl", append(full, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+w.dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		w.t.Fatalf("supervisorctl %v: %v", args, err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// expect runs supervisorctl and checks its exit code and that its output
// matches every regexp.
func (w *webWorld) expect(code int, args string, patterns ...string) string {
	w.t.Helper()
	out, got := w.ctl(strings.Fields(args)...)
	assert.Equal(w.t, code, got, "supervisorctl %s: exit code; output:\n%s", args, out)
	for _, p := range patterns {
		assert.Regexp(w.t, regexp.MustCompile(p), out, "supervisorctl %s", args)
	}
	return out
}

func (w *webWorld) pid(name string) int {
	data, err := os.ReadFile(filepath.Join(w.dir, name+".pid"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return n
}

func (w *webWorld) stoppedByHand(name string) bool {
	cfg, err := usrsvc.LoadConfig(w.cfg)
	require.NoError(w.t, err)
	m, err := usrsvc.NewManager(cfg, usrsvc.Options{})
	require.NoError(w.t, err)
	st, err := m.Do(context.Background(), usrsvc.ActionStatus, name)
	require.NoError(w.t, err)
	return (st.State == usrsvc.StateStoppedByHand)
}

func TestSupervisorctl(t *testing.T) {
	needTool(t, "supervisorctl")
	for _, transport := range []string{"unix", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			supervisorctlCommands(t, newWebWorld(t, transport == "tcp"))
		})
	}
}

// supervisorctlCommands runs every supervisorctl command usrsvcweb
// supports, as a user would, checking output and exit codes.
func supervisorctlCommands(t *testing.T, w *webWorld) {
	// Nothing runs yet, and no usrsvcd: every program is EXITED (3: not running).
	w.expect(3, "status", `(?m)^broken\s+EXITED\s+not running$`, `(?m)^sleeper\s+EXITED\s+not running$`)
	w.expect(0, "version", `^`+regexp.QuoteMeta(version.Version)+`\n$`)
	w.expect(0, "pid", `^0\n$`) // usrsvcd's pid; it is not running

	// start, and what a start of something running or broken says.
	w.expect(0, "start sleeper", `^sleeper: started\n$`)
	w.expect(0, "start talker", `^talker: started\n$`)
	spid := w.pid("sleeper")
	require.NotZero(t, spid)
	w.expect(0, "start sleeper", `^sleeper: ERROR \(already started\)\n$`)
	w.expect(7, "start broken", `^broken: ERROR \(spawn error\)\n$`)
	w.expect(1, "start nope", `^nope: ERROR \(no such process\)\n$`)
	w.expect(0, "status sleeper", fmt.Sprintf(`^sleeper\s+RUNNING\s+pid %d, uptime 0:00:\d\d\n$`, spid))
	w.expect(4, "status nope", `nope: ERROR \(no such process\)`)
	w.expect(0, "pid sleeper", fmt.Sprintf(`^%d\n$`, spid))
	w.expect(7, "pid idle", `^0\n$`)
	w.expect(1, "pid nope", `No such process nope`)
	w.expect(0, "pid all", fmt.Sprintf(`(?m)^%d$`, spid), `(?m)^0$`)

	// stop is a manual stop, recorded like usrsvc stop's.
	w.expect(0, "stop sleeper", `^sleeper: stopped\n$`)
	assert.False(t, testproc.Alive(spid), "the process is gone")
	assert.True(t, w.stoppedByHand("sleeper"), "recorded as stopped by hand")
	w.expect(3, "status sleeper", `^sleeper\s+STOPPED\s+stopped by hand \w{3} \d\d \d\d:\d\d [AP]M\n$`)
	w.expect(0, "stop sleeper", `^sleeper: ERROR \(not running\)\n$`)
	w.expect(1, "stop nope", `^nope: ERROR \(no such process\)\n$`)
	w.expect(0, "start sleeper", `^sleeper: started\n$`)
	assert.False(t, w.stoppedByHand("sleeper"), "a start clears the manual stop")
	spid = w.pid("sleeper")

	// restart = stop + start.
	w.expect(0, "restart sleeper", `^sleeper: stopped\nsleeper: started\n$`)
	assert.NotEqual(t, spid, w.pid("sleeper"))
	spid = w.pid("sleeper")

	// avail: every program, in use unless disabled; auto = autostart.
	w.expect(0, "avail", `(?m)^idle\s+in use\s+manual\s+999:999$`, `(?m)^sleeper\s+in use\s+auto\s+999:999$`)

	// Logs: tail reads the configured files only.
	testproc.WaitFor(t, 10*time.Second, func() bool {
		out, _ := w.ctl("tail", "talker")
		return regexp.MustCompile(`out \d+\n`).MatchString(out)
	}, "the talker's stdout shows in tail")
	w.expect(0, "tail talker", `(?m)^out \d+$`)
	out := w.expect(0, "tail -12 talker stderr", `err \d+`)
	assert.LessOrEqual(t, len(strings.TrimSuffix(out, "\n")), 12, "tail -12 is 12 bytes: %q", out)
	w.expect(1, "tail nope", `^nope: ERROR \(no such process name\)\n$`)
	w.expect(1, "tail talker bogus", `Error: bad channel 'bogus'`)
	w.expect(0, "maintail", `^usrsvcd line 1\nusrsvcd line 2\n\n$`)
	w.expect(0, "maintail -7", `^line 2\n\n$`)
	tailFollow(t, w, "talker", "stdout", `out \d+\n`)
	tailFollow(t, w, "talker", "stderr", `err \d+\n`)

	// clear empties the files in place; the program goes on writing.
	w.expect(0, "clear talker", `^talker: cleared\n$`)
	w.expect(1, "clear nope", `^nope: ERROR \(no such process\)\n$`)

	// signal: through the library (pidfd, re-checked match).
	w.expect(0, "start idle", `^idle: started\n$`)
	ipid := w.pid("idle")
	w.expect(1, "signal BOGUS idle", `^idle: ERROR \(bad signal name\)\n$`)
	w.expect(0, "signal TERM idle", `^idle: signalled\n$`)
	testproc.WaitFor(t, 10*time.Second, func() bool { return !testproc.Alive(ipid) }, "SIGTERM ends idle")
	w.expect(7, "signal TERM idle", `^idle: ERROR \(not running\)\n$`)
	assert.False(t, w.stoppedByHand("idle"), "a signal is not a manual stop")

	// reread / update: new programs are listed, and update adds them
	// without starting them (usrsvcd's reread autostarts them).
	w.expect(0, "reread", `^No config updates to processes\n$`)
	extra := testproc.New(t, "sleep").WithDeadline(10 * time.Minute)
	data, err := os.ReadFile(w.cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(w.cfg, append(data, []byte(strings.ReplaceAll(program("extra", extra.CommandLine()), "DIR", w.dir))...), 0o600))
	w.expect(0, "reread", `^extra: available\n$`)
	w.expect(0, "reread", `^extra: available\n$`) // as supervisord: until update adds it
	w.expect(0, "update", `^extra: added process group\n$`)
	w.expect(0, "update", `^$`) // added: nothing new
	w.expect(0, "reread", `^No config updates to processes\n$`)
	w.expect(3, "status", `(?m)^extra\s+EXITED`)
	assert.Equal(t, spid, w.pid("sleeper"), "reread and update restart nothing")
	assert.True(t, testproc.Alive(spid))
	// Removed: update stops it (it does not run) and removes it; the
	// others run on.
	require.NoError(t, os.WriteFile(w.cfg, data, 0o600))
	w.expect(0, "reread", `^extra: disappeared\n$`)
	w.expect(0, "update", `^extra: stopped\nextra: removed process group\n$`)
	w.expect(3, "status", `(?m)^talker\s+RUNNING`)
	assert.Equal(t, spid, w.pid("sleeper"), "update restarts nothing unchanged")
	// Added straight by update, without a reread first.
	require.NoError(t, os.WriteFile(w.cfg, append(data, []byte(strings.ReplaceAll(program("extra", extra.CommandLine()), "DIR", w.dir))...), 0o600))
	w.expect(0, "update", `^extra: added process group\n$`)
	require.NoError(t, os.WriteFile(w.cfg, data, 0o600))
	w.expect(0, "update", `^extra: stopped\nextra: removed process group\n$`)
	require.NoError(t, os.WriteFile(w.cfg, []byte("[Main]\nbroken line\n"), 0o600))
	w.expect(1, "reread", `(?s)^ERROR: CANT_REREAD: .*usrsvc.cfg:2: expected .key = value.`)
	require.NoError(t, os.WriteFile(w.cfg, data, 0o600))

	// all.
	w.expect(0, "stop all", `(?m)^sleeper: stopped$`, `(?m)^talker: stopped$`)
	w.expect(3, "status", `(?m)^sleeper\s+STOPPED\s+stopped by hand`)
	// idle is enabled (autostart = false only concerns usrsvcd): started too.
	w.expect(7, "start all", `(?m)^sleeper: started$`, `(?m)^talker: started$`, `(?m)^idle: started$`,
		`(?m)^broken: ERROR \(spawn error\)$`)
	w.expect(0, "stop all")

	// No manager to shut down: a clear fault.
	out = w.expect(1, "shutdown", `usrsvc has no manager process to shut down or restart`)
	assert.Contains(t, out, "supervisorctl stop all")
	w.expect(1, "reload", `usrsvc has no manager process`)

	code, took := w.stopWeb()
	assert.Equal(t, 0, code, "usrsvcweb exits 0 on SIGTERM")
	assert.Less(t, took, 2*time.Second, "graceful shutdown")
	if p, ok := strings.CutPrefix(w.url, "unix://"); ok {
		_, err := os.Lstat(p)
		assert.True(t, os.IsNotExist(err), "the socket is removed")
	}
}

// tailFollow runs supervisorctl tail -f (the /logtail HTTP stream) until
// two lines matching pattern arrived, then interrupts it as Ctrl-C does.
func tailFollow(t *testing.T, w *webWorld, name, channel, pattern string) {
	t.Helper()
	args := []string{"-s", w.url}
	if w.user != "" {
		args = append(args, "-u", w.user, "-p", w.pass)
	}
	cmd := exec.Command("supervisorctl", append(args, "tail", "-f", name, channel)...)
	cmd.Env = append(os.Environ(), "HOME="+w.dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	re := regexp.MustCompile(pattern)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var got []string
	matches := 0
	timeout := time.After(20 * time.Second)
	for matches < 3 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("tail -f %s %s ended: %q", name, channel, got)
			}
			got = append(got, l)
			if re.MatchString(l + "\n") {
				matches++
			}
		case <-timeout:
			t.Fatalf("tail -f %s %s: no new lines: %q", name, channel, got)
		}
	}
	assert.Equal(t, "==> Press Ctrl-C to exit <==", got[0])
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	assert.NoError(t, err, "supervisorctl exits 0 after Ctrl-C")
}

func TestSupervisorctlAuthAndReadOnly(t *testing.T) {
	needTool(t, "supervisorctl")
	t.Parallel()
	w := newWebWorld(t, true, "read_only = true")
	user, pass := w.user, w.pass

	w.user = ""
	w.expect(1, "status", `Server requires authentication`)
	w.user, w.pass = user, "wrong"
	w.expect(1, "status", `Server requires authentication`)
	w.pass = pass
	w.expect(3, "status", `(?m)^sleeper\s+EXITED`)
	testproc.WaitFor(t, 5*time.Second, func() bool {
		return strings.Count(w.webLog.String(), `msg="failed login" peer=127.0.0.1:`) >= 1
	}, "failed logins are logged with the peer's address")

	// read_only: every change refused, nothing changed.
	w.expect(1, "stop sleeper", `(?m)^FAILED: read-only`)
	w.expect(1, "start sleeper", `Unknown result code 30 for sleeper`) // supervisorctl has no word for it
	assert.Zero(t, w.pid("sleeper"), "nothing started")
	w.expect(1, "signal HUP sleeper", `FAILED: read-only`)
	w.expect(1, "clear talker", `talker: ERROR \(failed\)`)
	w.expect(1, "tail talker", `talker: ERROR \(no log file\)`) // never started
	w.expect(0, "avail", `sleeper`)
}

// TestPythonXMLRPC drives /RPC2 with Python's xmlrpc.client: faults,
// system.multicall, nil, base64 and the introspection methods.
func TestPythonXMLRPC(t *testing.T) {
	needTool(t, "supervisorctl")
	python := needTool(t, "python3")
	t.Parallel()
	w := newWebWorld(t, true)
	url := strings.Replace(w.url, "http://", "http://admin:s3%20cret%2042@", 1) + "/RPC2"
	script := `
import json, sys, xmlrpc.client as x
s = x.ServerProxy(sys.argv[1], allow_none=True)
out = {}
out["api"] = s.supervisor.getAPIVersion()
out["methods"] = s.system.listMethods()
out["sig"] = s.system.methodSignature("supervisor.readProcessStdoutLog")
out["help"] = s.system.methodHelp("supervisor.stopProcess")
def fault(f):
    try:
        f()
        return None
    except x.Fault as e:
        return [e.faultCode, e.faultString]
out["bad_name"] = fault(lambda: s.supervisor.getProcessInfo("nope"))
out["unknown"] = fault(lambda: s.supervisor.nope())
out["params"] = fault(lambda: s.supervisor.getProcessInfo())
out["nil"] = fault(lambda: s.system.methodHelp(None))
out["base64"] = fault(lambda: s.supervisor.readLog(x.Binary(b"\x00\x01"), 0))
out["bad_args"] = fault(lambda: s.supervisor.readProcessStdoutLog("talker", -10, 5))
m = x.MultiCall(s)
m.supervisor.getAPIVersion()
m.supervisor.getProcessInfo("nope")
m.supervisor.getProcessInfo("sleeper")
m.supervisor.getPID()
out["multicall"] = m().results
it = iter(m())
out["multicall_iter"] = [next(it), fault(lambda: next(it))]
raw = s.system.multicall([{"methodName": "system.multicall", "params": []}, {"params": []}, {"methodName": "supervisor.getState"}])
out["multicall_raw"] = raw
print(json.dumps(out))
`
	cmd := exec.Command(python, "-c", script, url)
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, string(outb))
	var out map[string]any
	require.NoError(t, json.Unmarshal(outb, &out), string(outb))

	assert.Equal(t, "3.0", out["api"])
	assert.Contains(t, out["methods"], "system.multicall")
	assert.Contains(t, out["methods"], "supervisor.getAllProcessInfo")
	assert.Equal(t, []any{"string", "string", "int", "int"}, out["sig"])
	assert.Contains(t, out["help"], "by hand")
	assert.Equal(t, []any{10.0, "BAD_NAME: nope"}, out["bad_name"])
	assert.Equal(t, []any{1.0, "UNKNOWN_METHOD: supervisor.nope"}, out["unknown"])
	assert.Equal(t, 2.0, out["params"].([]any)[0])
	assert.Equal(t, []any{4.0, "SIGNATURE_UNSUPPORTED"}, out["nil"])
	assert.Equal(t, 2.0, out["base64"].([]any)[0])
	assert.Equal(t, 3.0, out["bad_args"].([]any)[0])

	mc := out["multicall"].([]any)
	require.Len(t, mc, 4)
	assert.Equal(t, []any{"3.0"}, mc[0])
	assert.Equal(t, map[string]any{"faultCode": 10.0, "faultString": "BAD_NAME: nope"}, mc[1])
	assert.Equal(t, []any{"3.0", []any{10.0, "BAD_NAME: nope"}}, out["multicall_iter"], "MultiCall raises the fault")
	info := mc[2].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "group", "description", "start", "stop", "now", "state", "statename",
		"spawnerr", "exitstatus", "logfile", "stdout_logfile", "stderr_logfile", "pid"} {
		assert.Contains(t, info, k)
	}
	assert.Equal(t, "sleeper", info["group"])
	assert.Equal(t, "EXITED", info["statename"])
	assert.Equal(t, 100.0, info["state"])
	assert.Equal(t, []any{0.0}, mc[3])

	raw := out["multicall_raw"].([]any)
	require.Len(t, raw, 3)
	assert.Equal(t, 2.0, raw[0].(map[string]any)["faultCode"])
	assert.Contains(t, raw[0].(map[string]any)["faultString"], "Recursive system.multicall forbidden")
	assert.Contains(t, raw[1].(map[string]any)["faultString"], "No methodName")
	assert.Equal(t, []any{map[string]any{"statecode": 1.0, "statename": "RUNNING"}}, raw[2])
}
