package usrsvc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}

// testEnv is a temp "home": a main config with its state directory, and
// programs added to it.
type testEnv struct {
	t        testing.TB
	dir      string
	cfgPath  string
	main     string
	programs []string
}

func newTestEnv(t testing.TB) *testEnv {
	dir := t.TempDir()
	e := &testEnv{t: t, dir: dir, cfgPath: filepath.Join(dir, "usrsvc.cfg")}
	e.main = fmt.Sprintf("[Main]\npidfile = %s\nstate_dir = %s\n", e.path("usrsvcd.pid"), e.path("state"))
	return e
}

func (e *testEnv) path(name string) string { return filepath.Join(e.dir, name) }

// addProgram adds [Program:name] with pidfile/stdout in the temp dir and
// the given extra lines.
func (e *testEnv) addProgram(name, command string, extra ...string) {
	lines := []string{
		"[Program:" + name + "]",
		"command = " + command,
		"pidfile = " + e.path(name+".pid"),
		"stdout = " + e.path(name+".log"),
	}
	defaults := map[string]string{"success_seconds": "0.3", "term_to_kill_seconds": "2"}
	for _, x := range extra {
		k, _, _ := strings.Cut(x, "=")
		delete(defaults, strings.TrimSpace(k))
	}
	for _, k := range []string{"success_seconds", "term_to_kill_seconds"} {
		if v, ok := defaults[k]; ok {
			lines = append(lines, k+" = "+v)
		}
	}
	lines = append(lines, extra...)
	e.programs = append(e.programs, strings.Join(lines, "\n")+"\n")
}

func (e *testEnv) write() string {
	text := e.main + "\n" + strings.Join(e.programs, "\n")
	require.NoError(e.t, os.WriteFile(e.cfgPath, []byte(text), 0o644))
	return e.cfgPath
}

func (e *testEnv) config() *Config {
	cfg, err := LoadConfig(e.write())
	require.NoError(e.t, err)
	return cfg
}

func (e *testEnv) manager(opts ...func(*Options)) *Manager {
	var o Options
	for _, f := range opts {
		f(&o)
	}
	m, err := NewManager(e.config(), o)
	require.NoError(e.t, err)
	return m
}

// uniqueSleep returns a /bin/sleep command line unique to this test (a
// non-Go program, so its fds are only what usrsvc gave it), killed in cleanup.
func uniqueSleep(t testing.TB) (cmdline, token string) {
	token = fmt.Sprintf("%d.%06d", 100000+time.Now().UnixNano()%800000, time.Now().Nanosecond()/1000)
	t.Cleanup(func() { testproc.KillToken("sleep " + token) })
	return "/bin/sleep " + token, token
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readProc returns a field of /proc/PID/status.
func procStatusField(t testing.TB, pid int, field string) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// procStatFields returns the fields of /proc/PID/stat after the comm.
func procStatFields(t testing.TB, pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

func pidAlive(pid int) bool { return testproc.Alive(pid) }

func waitFor(t testing.TB, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	testproc.WaitFor(t, d, cond, msg)
}

// loopView is what the running loop knows of one program, read in the
// loop's goroutine: the way tests check that nothing more will happen
// (not busy, no deadline) instead of sleeping and looking.
type loopView struct {
	known     bool
	state     State
	busy      bool
	restarts  int
	deadlines []time.Time
}

type inspectMsg struct {
	name  string
	reply chan loopView
}

func (msg inspectMsg) handle(l *loop) {
	sv := l.progs[msg.name]
	if sv == nil {
		msg.reply <- loopView{}
		return
	}
	msg.reply <- loopView{known: true, state: sv.state, busy: sv.busy, restarts: sv.restarts, deadlines: sv.deadlines(nil)}
}

// inspect asks m's running loop about name. Messages are handled in order,
// so the answer comes after everything the loop was sent before.
func inspect(t testing.TB, m *Manager, name string) loopView {
	t.Helper()
	l := m.running.Load()
	require.NotNil(t, l, "no loop runs")
	reply := make(chan loopView, 1)
	l.send(inspectMsg{name: name, reply: reply})
	select {
	case v := <-reply:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("the loop did not answer within 30 s")
		return loopView{}
	}
}

// waitSettled waits until the loop holds name in state with nothing more to
// do for it: no operation in flight and no deadline (no retry, no poll, no
// monitor round). Only an outside event can then make it act again.
func waitSettled(t testing.TB, m *Manager, name string, state State) {
	t.Helper()
	var v loopView
	waitFor(t, 30*time.Second, func() bool {
		v = inspect(t, m, name)
		return v.known && v.state == state && !v.busy && len(v.deadlines) == 0
	}, fmt.Sprintf("%s settled in state %s (last seen %+v)", name, state, v))
}

// matchTitle reports whether title matches pc as a Matcher matches it.
func matchTitle(pc *Program, title string) bool { return (&Matcher{}).matchTitle(pc, title) }

// titleRE is the regexp of pc's match, as the launcher gets it.
func titleRE(pc *Program) string { return (&Matcher{}).titleRE(pc) }

// resultCode is the return code the tools give r.
func resultCode(r Result) exitcode.Code {
	if r.Err != nil {
		return exitcode.Of(r.Err)
	}
	if r.Action == ActionStatus && (r.Status == nil || !r.Status.Running) {
		return exitcode.GeneralFailure
	}
	return exitcode.Success
}

// parseProblem splits "file:line: message" (or "file: message", or a bare
// message) into a problem.
func parseProblem(s string) problem {
	if !strings.HasPrefix(s, "/") {
		return problem{Msg: s}
	}
	file, rest, ok := strings.Cut(s, ": ")
	if !ok {
		return problem{Msg: s}
	}
	if i := strings.LastIndexByte(file, ':'); i > 0 {
		if n, err := strconv.Atoi(file[i+1:]); err == nil {
			return problem{File: file[:i], Line: n, Msg: rest}
		}
	}
	return problem{File: file, Msg: rest}
}

// parseProblems parses every problem of a list.
func parseProblems(list []string) []problem {
	ps := make([]problem, len(list))
	for i, s := range list {
		ps[i] = parseProblem(s)
	}
	return ps
}
