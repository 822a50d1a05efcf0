package usrsvc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/exitcode"
)

// writeConfig writes a small configuration in a temp directory: one
// program running /bin/sleep with a title unique to this run.
func writeConfig(dir, extra string) string {
	cfg := fmt.Sprintf(`[Main]
pidfile = %[1]s/usrsvcd.pid
state_dir = %[1]s/state

[Program:sleeper]
command = /bin/sleep 7%[2]d.5
pidfile = %[1]s/sleeper.pid
stdout = %[1]s/sleeper.log
success_seconds = 0.2
%[3]s`, dir, os.Getpid(), extra)
	path := filepath.Join(dir, "usrsvc.cfg")
	os.WriteFile(path, []byte(cfg), 0o600)
	return path
}

// Start a program detached, look at it, stop it.
func ExampleManager() {
	dir, _ := os.MkdirTemp("", "usrsvc-example-")
	defer os.RemoveAll(dir)
	cfg, err := usrsvc.LoadConfig(writeConfig(dir, ""))
	if err != nil {
		fmt.Println(err)
		return
	}
	m, _ := usrsvc.NewManager(cfg, usrsvc.Options{})
	ctx := context.Background()

	st, err := m.Do(ctx, usrsvc.ActionStart, "sleeper")
	fmt.Println("start:", st.Message, err, exitcode.Of(err))
	fmt.Println("parent is us:", parentOf(st.Process.PID) == os.Getpid())

	st, _ = m.Do(ctx, usrsvc.ActionStatus, "sleeper")
	fmt.Println("running:", st.Running)

	st, err = m.Do(ctx, usrsvc.ActionStop, "sleeper")
	fmt.Println("stop:", st.Message, err)
	st, _ = m.Do(ctx, usrsvc.ActionStatus, "sleeper")
	fmt.Println("running:", st.Running, st.State)
	// Output:
	// start: started <nil> SUCCESS
	// parent is us: false
	// running: true
	// stop: terminated <nil>
	// running: false stopped-by-hand
}

func parentOf(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(data)
	var ppid int
	fmt.Sscanf(s[strings.LastIndexByte(s, ')')+2:], "%*c %d", &ppid)
	return ppid
}

// Every problem of a configuration at once, each with its file and line.
func ExampleLoadConfig() {
	dir, _ := os.MkdirTemp("", "usrsvc-example-")
	defer os.RemoveAll(dir)
	path := writeConfig(dir, "restart_dealy = 3\nmaxrestarts = -1\n")

	_, err := usrsvc.LoadConfig(path)
	var ce *usrsvc.ConfigError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Println(strings.TrimPrefix(p, dir+"/"))
		}
	}
	fmt.Println(errors.Is(err, usrsvc.ErrInvalidConfig))
	// Output:
	// usrsvc.cfg:10: unknown key restart_dealy in [Program:sleeper]; did you mean restart_delay?
	// usrsvc.cfg:11: maxrestarts = -1 is negative; set it to a count ≥ 0 (0 = unlimited)
	// true
}

// Errors wrap sentinel errors: test them with errors.Is.
func ExampleManager_Do() {
	dir, _ := os.MkdirTemp("", "usrsvc-example-")
	defer os.RemoveAll(dir)
	cfg, _ := usrsvc.LoadConfig(writeConfig(dir, ""))
	m, _ := usrsvc.NewManager(cfg, usrsvc.Options{})

	_, err := m.Do(context.Background(), usrsvc.ActionStart, "sleepr")
	fmt.Println(errors.Is(err, usrsvc.ErrUndefined))
	fmt.Println(err)
	// Output:
	// true
	// start sleepr: no such program: no program named "sleepr" is defined (did you mean "sleeper"?)
}

// A Go program supervising a helper it defines in Go, with no
// configuration file: Run starts it, a crash (SIGKILL here) brings it back
// at once with a new pid, and Stop stops it for good.
func ExampleNewProgram() {
	dir, _ := os.MkdirTemp("", "usrsvc-example-")
	defer os.RemoveAll(dir)

	cfg := usrsvc.NewConfig()
	cfg.StateDir = filepath.Join(dir, "state") // this example's own
	helper := usrsvc.NewProgram("helper", "sleep", fmt.Sprintf("7%d.25", os.Getpid()))
	helper.SuccessSeconds = 200 * time.Millisecond
	if err := cfg.Add(helper); err != nil {
		fmt.Println(err)
		return
	}
	started := make(chan int, 4)
	m, err := usrsvc.NewManager(cfg, usrsvc.Options{OnEvent: func(ev usrsvc.Event) {
		if ev.Kind == usrsvc.EventStarted {
			started <- ev.PID
		}
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	next := func() int {
		select {
		case pid := <-started:
			return pid
		case <-time.After(30 * time.Second):
			return 0
		}
	}
	first := next()
	fmt.Println("started by Run:", first != 0)
	syscall.Kill(first, syscall.SIGKILL)
	second := next()
	fmt.Println("restarted with a new pid:", second != 0 && second != first)

	cancel()
	fmt.Println("Run returned:", <-done)
	st, err := m.Do(context.Background(), usrsvc.ActionStop, "helper")
	fmt.Println("stopped:", st.Message, err)
	// Output:
	// started by Run: true
	// restarted with a new pid: true
	// Run returned: <nil>
	// stopped: terminated <nil>
}

// A Matcher finds a program's process on its own, as usrsvc does: the
// pidfile first, then the account's own processes whose command line is
// the program's. Here the helper was started by hand, not by usrsvc.
func ExampleMatcher() {
	dir, _ := os.MkdirTemp("", "usrsvc-example-")
	defer os.RemoveAll(dir)
	arg := fmt.Sprintf("7%d.5", os.Getpid()) // a unique command line
	cmd := exec.Command("sleep", arg)
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	helper := usrsvc.NewProgram("helper", "sleep", arg)
	helper.Pidfile = filepath.Join(dir, "helper.pid")
	var mt usrsvc.Matcher
	var p *usrsvc.Process
	for i := 0; i < 200 && p == nil; i++ { // until the child has exec'd sleep
		p, _ = mt.Find(helper)
		mt = usrsvc.Matcher{} // a fresh look
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println(p != nil && p.PID == cmd.Process.Pid, p != nil && p.Title == "sleep "+arg)

	other := usrsvc.NewProgram("other", "sleep", arg+"9")
	other.Pidfile = filepath.Join(dir, "other.pid")
	q, err := mt.Find(other)
	fmt.Println(q, err)
	// Output:
	// true true
	// <nil> <nil>
}
