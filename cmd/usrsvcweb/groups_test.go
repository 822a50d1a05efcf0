package main

import (
	"bufio"
	"context"
	"encoding/json"
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
)

// newWorld starts usrsvcweb (over its unix socket) on a config of the
// given sections; DIR in them is the test's directory.
func newWorld(t *testing.T, sections ...string) *webWorld {
	t.Helper()
	dir := t.TempDir()
	w := &webWorld{t: t, dir: dir, cfg: filepath.Join(dir, "usrsvc.cfg"), state: filepath.Join(dir, "state"),
		tokens: map[string]string{}}
	w.writeConfig("", sections...)
	w.startWeb()
	return w
}

// runLoop runs usrsvcd's supervising loop over the world's config in this
// process until the test ends.
func (w *webWorld) runLoop() {
	m, err := usrsvc.NewManager(mustLoad(w.t, w.cfg), usrsvc.Options{})
	require.NoError(w.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	w.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			w.t.Error("the supervising loop did not end")
		}
		m.DoAll(context.Background(), usrsvc.ActionStop, nil, true)
	})
}

// Instances (numprocs) and [Group:NAME] sections as supervisorctl sees
// them: GROUP:NAME everywhere, GROUP:* for a group, and reread/update by
// group (a changed group restarted with its new settings, a removed one
// stopped, an added one added).
func TestSupervisorctlGroups(t *testing.T) {
	needTool(t, "supervisorctl")
	t.Parallel()
	say := testproc.New(t, "say", "--line=hello-%(process_num)02d").WithDeadline(10 * time.Minute)
	api := testproc.New(t, "sleep").WithDeadline(10 * time.Minute)
	web := testproc.New(t, "sleep").WithDeadline(10 * time.Minute)
	solo := testproc.New(t, "sleep").WithDeadline(10 * time.Minute)
	common := "success_seconds = 0.3\nterm_to_kill_seconds = 3\nautostart = false\n"
	worker := func(n int) string {
		return fmt.Sprintf("[Program:worker]\ncommand = %s n%%(process_num)02d\nnumprocs = %d\n"+
			"stdout = DIR/worker_%%(process_num)02d.log\n%s", say.CommandLine(), n, common)
	}
	sections := []string{
		worker(3),
		"[Program:api]\ncommand = " + api.CommandLine() + "\n" + common,
		"[Program:web]\ncommand = " + web.CommandLine() + "\n" + common,
		"[Program:solo]\ncommand = " + solo.CommandLine() + "\n" + common,
		"[Group:site]\nprograms = web, api\n",
	}
	w := newWorld(t, sections...)

	w.expect(3, "status", `(?s)^site:api\s+EXITED.*\nsite:web\s+EXITED.*\nsolo\s+EXITED.*\nworker:worker_00\s+EXITED.*\n`+
		`worker:worker_01\s+EXITED.*\nworker:worker_02\s+EXITED[^\n]*\n$`)
	w.expect(0, "avail", `(?m)^site:api\s+in use\s+manual\s+999:999$`, `(?m)^worker:worker_02\s+in use\s+manual\s+999:999$`,
		`(?m)^solo\s+in use`)

	// A group at once; one of its processes; their status.
	w.expect(0, "start worker:*", `^worker:worker_00: started\nworker:worker_01: started\nworker:worker_02: started\n$`)
	out := w.expect(0, "status worker:*", `(?m)^worker:worker_00\s+RUNNING\s+pid \d+`, `(?m)^worker:worker_02\s+RUNNING`)
	assert.NotContains(t, out, "site:")
	w.expect(0, "stop worker:worker_01", `^worker:worker_01: stopped\n$`)
	w.expect(3, "status worker:worker_01", `^worker:worker_01\s+STOPPED\s+stopped by hand`)
	w.expect(0, "status worker:worker_00", `^worker:worker_00\s+RUNNING`)
	w.expect(1, "stop worker:nope", `^worker:nope: ERROR \(no such process\)\n$`)
	w.expect(0, "start site:*", `^site:api: started\nsite:web: started\n$`)
	w.expect(0, "stop site:*", `^site:api: stopped\nsite:web: stopped\n$`)
	w.expect(0, "start site:web", `^site:web: started\n$`)
	w.expect(0, "start solo", `^solo: started\n$`)
	pid00 := w.pidOf("worker_00")
	require.NotZero(t, pid00)
	w.expect(0, "pid worker:worker_00", fmt.Sprintf(`^%d\n$`, pid00))

	// Logs by GROUP:NAME, read and followed.
	w.expect(0, "tail worker:worker_00", `^hello-00\n\n$`)
	w.expect(0, "tail worker:worker_02 stdout", `^hello-02\n\n$`)
	tailFollowAppended(t, w, "worker:worker_00", filepath.Join(w.dir, "worker_00.log"), "hello-00")
	w.expect(0, "clear worker:worker_02", `^worker:worker_02: cleared\n$`)

	// reread and update by group: worker changed (2 instances now), solo
	// removed, extra added.
	extra := testproc.New(t, "sleep").WithDeadline(10 * time.Minute)
	sections[0] = worker(2)
	sections[3] = "[Program:extra]\ncommand = " + extra.CommandLine() + "\n" + common
	w.writeConfig("", sections...)
	soloPid, pid02 := w.pidOf("solo"), w.pidOf("worker_02")
	require.NotZero(t, soloPid)
	require.NotZero(t, pid02)
	w.expect(0, "reread", `^extra: available\nsolo: disappeared\nworker: changed\n$`)
	w.expect(0, "update", `^solo: stopped\nsolo: removed process group\nworker: stopped\nworker: updated process group\n`+
		`extra: added process group\n$`)
	assert.False(t, testproc.Alive(soloPid), "removed: stopped")
	assert.False(t, testproc.Alive(pid02), "an instance no longer configured: stopped")
	w.expect(3, "status", `(?m)^worker:worker_00\s+RUNNING`, `(?m)^worker:worker_01\s+STOPPED\s+stopped by hand`,
		`(?m)^site:web\s+RUNNING`, `(?m)^extra\s+EXITED`)
	out, _ = w.ctl("status")
	assert.NotContains(t, out, "worker_02")
	assert.NotContains(t, out, "solo")
	assert.NotEqual(t, pid00, w.pidOf("worker_00"), "the changed group's running instance runs again, with its new settings")
	assert.True(t, testproc.Alive(w.pidOf("worker_00")))
	w.expect(0, "reread", `^No config updates to processes\n$`)
	w.expect(0, "update", `^$`)

	// add and remove, by hand.
	w.expect(1, "remove site", `^ERROR: process/group still running: site\n$`)
	w.expect(0, "stop site:*", `^site:web: stopped\n$`)
	w.expect(0, "remove site", `^site: removed process group\n$`)
	w.expect(0, "reread", `^site: available\n$`)
	w.expect(0, "add site", `^site: added process group\n$`)
	w.expect(0, "add site", `^ERROR: process group already active\n$`)
	w.expect(0, "stop all")
}

// pidOf reads a program's pidfile in the state directory.
func (w *webWorld) pidOf(name string) int {
	data, err := os.ReadFile(filepath.Join(w.state, "pids", name+".pid"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return n
}

// tailFollowAppended runs supervisorctl tail -f NAMESPEC, waits for the
// tail it starts with (first), then appends a line to the log and waits
// for it; then interrupts it as Ctrl-C does.
func tailFollowAppended(t *testing.T, w *webWorld, namespec, log, first string) {
	t.Helper()
	cmd := exec.Command("supervisorctl", "-s", w.url, "tail", "-f", namespec)
	cmd.Env = append(os.Environ(), "HOME="+w.dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	wait := func(want string) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				require.True(t, ok, "tail -f %s ended before %q", namespec, want)
				if l == want {
					return
				}
			case <-timeout:
				t.Fatalf("tail -f %s: no %q", namespec, want)
			}
		}
	}
	wait(first)
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString("appended while followed\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	wait("appended while followed")
	cmd.Process.Signal(syscall.SIGINT)
	assert.NoError(t, cmd.Wait(), "supervisorctl exits 0 after Ctrl-C")
}

// A start waits for readiness: a program whose ready = tcp: port never
// listens fails as supervisord reports a process that did not reach
// RUNNING (abnormal termination), with the reason in the fault; one that
// depends on it is not launched (spawn error).
func TestSupervisorctlReady(t *testing.T) {
	needTool(t, "supervisorctl")
	python := needTool(t, "python3")
	t.Parallel()
	slow := testproc.New(t, "sleep").WithDeadline(10 * time.Minute)
	dep := testproc.New(t, "sleep").WithDeadline(10 * time.Minute)
	port := strconv.Itoa(freePort(t))
	w := newWorld(t,
		"[Program:slow]\ncommand = "+slow.CommandLine()+"\nready = tcp:127.0.0.1:"+port+"\nready_timeout = 1\nautostart = false\n",
		"[Program:dep]\ncommand = "+dep.CommandLine()+"\ndepends_on = slow\nsuccess_seconds = 0.3\nautostart = false\n")
	w.expect(7, "start slow", `^slow: ERROR \(abnormal termination\)\n$`)
	assert.Empty(t, slow.PIDs(), "what it started was stopped")
	w.expect(7, "start dep", `^dep: ERROR \(spawn error\)\n$`)
	assert.Empty(t, dep.PIDs(), "not launched: its dependency is not ready")
	assert.Empty(t, slow.PIDs())

	script := `
import json, sys, xmlrpc.client as x
s = x.ServerProxy("http://usrsvc/RPC2", transport=sys.modules["__main__"].T())
out = {}
for name in ("slow", "dep"):
    try:
        s.supervisor.startProcess(name)
        out[name] = None
    except x.Fault as e:
        out[name] = [e.faultCode, e.faultString]
print(json.dumps(out))
`
	// Python's xmlrpc.client over the unix socket.
	prelude := `
import http.client, socket, xmlrpc.client
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(__SOCKPATH__)
class T(xmlrpc.client.Transport):
    def make_connection(self, host):
        return C("localhost")
`
	sock := strings.TrimPrefix(w.url, "unix://")
	cmd := exec.Command(python, "-c", strings.Replace(prelude, "__SOCKPATH__", fmt.Sprintf("%q", sock), 1)+script)
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, string(outb))
	var faults map[string][]any
	require.NoError(t, json.Unmarshal(outb, &faults), string(outb))
	require.Len(t, faults["slow"], 2, string(outb))
	assert.Equal(t, 40.0, faults["slow"][0])
	assert.Regexp(t, regexp.MustCompile(`^ABNORMAL_TERMINATION: slow: not ready after 1s \(ready = tcp:127\.0\.0\.1:`+port+`\)`),
		faults["slow"][1])
	require.Len(t, faults["dep"], 2, string(outb))
	assert.Equal(t, 50.0, faults["dep"][0])
	assert.Contains(t, faults["dep"][1], "SPAWN_ERROR: dep: not started: dependency slow did not start: not ready after 1s")
}

// An unhealthy program's reason shows in supervisorctl status.
func TestSupervisorctlHealth(t *testing.T) {
	needTool(t, "supervisorctl")
	t.Parallel()
	port := strconv.Itoa(freePort(t))
	dir := t.TempDir()
	status := filepath.Join(dir, "status")
	srv := testproc.New(t, "http-server", "--listen=127.0.0.1:"+port, "--status-file="+status).WithDeadline(10 * time.Minute)
	w := newWorld(t, "[Program:api]\ncommand = "+srv.CommandLine()+"\nsuccess_seconds = 0.3\n"+
		"[[Monitor]]\nmonitor_after = 0\nmonitor_interval = 0.3\ncheck_timeout = 0.2\ncheck_failures = 2\ncheck_action = alert\n"+
		"http_check = http://127.0.0.1:"+port+"/healthz\n")
	w.runLoop()
	testproc.WaitFor(t, 30*time.Second, func() bool {
		out, _ := w.ctl("status", "api")
		return regexp.MustCompile(`^api\s+RUNNING\s+pid \d+, uptime \d+:\d\d:\d\d\n$`).MatchString(out)
	}, "api started by the loop, healthy: no health in its description")
	require.NoError(t, os.WriteFile(status, []byte("503"), 0o600))
	re := regexp.MustCompile(`^api\s+RUNNING\s+pid \d+, uptime \d+:\d\d:\d\d, unhealthy: http_check http://127\.0\.0\.1:` + port +
		`/healthz: status 503 \(\d+ in a row\)\n$`)
	testproc.WaitFor(t, 30*time.Second, func() bool {
		out, _ := w.ctl("status", "api")
		return re.MatchString(out)
	}, "supervisorctl status shows why api is unhealthy")
	require.NoError(t, os.Remove(status))
	testproc.WaitFor(t, 30*time.Second, func() bool {
		out, _ := w.ctl("status", "api")
		return strings.Contains(out, "RUNNING") && !strings.Contains(out, "unhealthy")
	}, "healthy again")
}
