package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Main runs the helper behaviour named by os.Args[2] and exits when
// os.Args[1] is [Marker]; otherwise it returns at once. Call it first in
// TestMain.
func Main() {
	if len(os.Args) < 3 || os.Args[1] != Marker {
		return
	}
	if os.Args[2] == nofileBehaviour {
		exit(withNofile(os.Args[3:]))
	}
	code := run(os.Args[2], os.Args[3:])
	exit(code)
}

// exit ends the helper at once. Unlike os.Exit it skips the race
// detector's one-second pause at exit (GORACE atexit_sleep_ms), which would
// make every helper of a -race test binary exit a second late.
func exit(code int) {
	syscall.Exit(code)
}

// helper is the running helper's view of its arguments.
type helper struct {
	behaviour string
	token     string
	ready     string
	deadline  time.Duration
	end       time.Time
	opts      map[string][]string // --name=value options other than the common ones, in order
	pos       []string            // positional arguments
	raw       []string            // the arguments after the common ones, as given
}

func (h *helper) opt(name string) (string, bool) {
	v, ok := h.opts[name]
	if !ok {
		return "", false
	}
	return v[len(v)-1], true
}

func run(behaviour string, args []string) int {
	h := &helper{behaviour: behaviour, deadline: DefaultDeadline, opts: map[string][]string{}}
	for _, a := range args {
		name, val, isOpt := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		isOpt = isOpt && strings.HasPrefix(a, "--")
		switch {
		case isOpt && name == "token":
			h.token = val
		case isOpt && name == "ready":
			h.ready = val
		case isOpt && name == "deadline":
			d, err := time.ParseDuration(val)
			if err != nil {
				return usage(h, "bad --deadline: %v", err)
			}
			h.deadline = d
		case isOpt:
			h.opts[name] = append(h.opts[name], val)
			h.raw = append(h.raw, a)
		default:
			h.pos = append(h.pos, a)
			h.raw = append(h.raw, a)
		}
	}
	h.end = time.Now().Add(h.deadline)
	// Whatever the behaviour does, it ends at the deadline.
	time.AfterFunc(h.deadline, func() { exit(0) })

	switch behaviour {
	case "sleep":
		h.writeReady()
		h.block()
	case "fork-and-exit":
		return h.forkAndExit()
	case "exit-after":
		if len(h.pos) != 2 {
			return usage(h, "want DUR CODE")
		}
		d, err := time.ParseDuration(h.pos[0])
		if err != nil {
			return usage(h, "%v", err)
		}
		code, err := strconv.Atoi(h.pos[1])
		if err != nil {
			return usage(h, "%v", err)
		}
		h.writeReady()
		time.Sleep(d)
		for _, line := range h.opts["stderr"] {
			fmt.Fprintln(os.Stderr, line)
		}
		return code
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		h.writeReady()
		h.block()
	case "grow-rss":
		if len(h.pos) != 1 {
			return usage(h, "want MB")
		}
		mb, err := strconv.Atoi(h.pos[0])
		if err != nil || mb < 0 {
			return usage(h, "bad MB %q", h.pos[0])
		}
		ballast = make([]byte, mb<<20)
		for i := 0; i < len(ballast); i += 4096 {
			ballast[i] = 1
		}
		h.writeReady()
		h.block()
	case "touch-file":
		return h.touchFile()
	case "crash":
		fmt.Fprintln(os.Stderr, "testproc: crash: this helper fails at once")
		return 1
	case "spawn-child":
		return h.spawnChild()
	case "http-server":
		return h.httpServer()
	case "on-hup":
		return h.onHup()
	case "reexec":
		return h.reexec()
	case "say":
		return h.say()
	case "notify":
		return h.notify()
	case "print-env":
		for _, name := range h.pos {
			v, ok := os.LookupEnv(name)
			if !ok {
				v = "<unset>"
			}
			fmt.Printf("%s=%s\n", name, v)
		}
		h.writeReady()
		h.block()
	default:
		return usage(h, "unknown behaviour")
	}
	return 0
}

// ballast is grow-rss's memory, kept reachable.
var ballast []byte

func usage(h *helper, format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "testproc %s: %s\n", h.behaviour, fmt.Sprintf(format, a...))
	return 2
}

// block waits for the deadline, then exits 0.
func (h *helper) block() {
	time.Sleep(time.Until(h.end))
	exit(0)
}

// writeReady writes our pid to the ready file, atomically.
func (h *helper) writeReady() {
	if h.ready == "" {
		return
	}
	tmp := h.ready + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "testproc: %v\n", err)
		exit(2)
	}
	if err := os.Rename(tmp, h.ready); err != nil {
		fmt.Fprintf(os.Stderr, "testproc: %v\n", err)
		exit(2)
	}
}

// argv returns the command of a helper with the same token and deadline.
func (h *helper) argv(behaviour, ready string, args []string) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return append([]string{exe, Marker, behaviour, "--token=" + h.token, "--ready=" + ready,
		"--deadline=" + time.Until(h.end).Round(time.Millisecond).String()}, args...), nil
}

func (h *helper) forkAndExit() int {
	behaviour := "sleep"
	var args []string
	var delay time.Duration
	for _, a := range h.raw {
		switch {
		case strings.HasPrefix(a, "--behaviour="):
			behaviour = strings.TrimPrefix(a, "--behaviour=")
		case strings.HasPrefix(a, "--delay="):
			d, err := time.ParseDuration(strings.TrimPrefix(a, "--delay="))
			if err != nil {
				return usage(h, "bad --delay: %v", err)
			}
			delay = d
		default:
			args = append(args, a) // the detached behaviour's
		}
	}
	argv, err := h.argv(behaviour, h.ready, args)
	if err != nil {
		return usage(h, "%v", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...) // stdio: /dev/null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return usage(h, "%v", err)
	}
	time.Sleep(delay)
	return 0 // never waited for: the child is reparented when we exit
}

func (h *helper) touchFile() int {
	if len(h.pos) != 2 {
		return usage(h, "want PATH INTERVAL")
	}
	path := h.pos[0]
	interval, err := time.ParseDuration(h.pos[1])
	if err != nil || interval <= 0 {
		return usage(h, "bad INTERVAL %q", h.pos[1])
	}
	stopAt := h.end
	if v, ok := h.opt("stop-after"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return usage(h, "bad --stop-after: %v", err)
		}
		stopAt = time.Now().Add(d)
	}
	touch := func() {
		now := time.Now()
		if err := os.Chtimes(path, now, now); err != nil {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				fmt.Fprintf(os.Stderr, "testproc: %v\n", err)
				return
			}
			f.Close()
		}
	}
	touch()
	h.writeReady()
	for time.Now().Add(interval).Before(stopAt) {
		time.Sleep(interval)
		touch()
	}
	h.block()
	return 0
}

func (h *helper) spawnChild() int {
	ready := h.ready + ".child"
	if h.ready == "" {
		ready = filepath.Join(os.TempDir(), h.token+".child.ready")
	}
	count := 1
	if v, ok := h.opt("count"); ok {
		count, _ = strconv.Atoi(v)
	}
	for i := 0; i < count; i++ {
		r := ready
		if i > 0 {
			r = ready + strconv.Itoa(i)
		}
		argv, err := h.argv("sleep", r, nil)
		if err != nil {
			return usage(h, "%v", err)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return usage(h, "%v", err)
		}
		go func() { _ = cmd.Wait() }() // reap it, should it exit
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(r); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return usage(h, "child not ready")
			}
		}
	}
	h.writeReady()
	h.block()
	return 0
}
