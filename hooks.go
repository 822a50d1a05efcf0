package usrsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/home"
	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/shellcmd"
)

// Hooks: the [[Hook]] of a program runs a command of the account's on the
// events it names, while usrsvcd (Manager.Run) supervises. The command is
// split like a program's command (no shell unless it runs one), runs in the
// program's directory and environment plus USRSVC_PROGRAM, USRSVC_EVENT,
// USRSVC_REASON and USRSVC_PID, gets the event as one JSON line on its
// stdin, and is killed with its process group after its timeout (logged as
// hook-failed). It runs beside the loop: a hook never delays a restart.
// Like alerts, a hook runs at most once a minute for one program and
// event; the runs skipped meanwhile are counted in the next one's JSON.

// hookEventNames are the [[Hook]] events of the event kinds.
var hookEventNames = map[EventKind]string{
	EventStarted: "started", EventStopped: "stopped", EventExited: "exited", EventRestarting: "restarted",
	EventGaveUp: "gave-up", EventMonitorFailed: "monitor-restart", EventHealthFailed: "health-failed",
	EventHealthRecovered: "health-recovered", EventStartFailed: "start-failed",
}

// hookLimit is the least time between two runs of a program's hook for one event.
const hookLimit = time.Minute

// hookRecord is the JSON line a hook reads on its stdin.
type hookRecord struct {
	Time       string `json:"time"`
	Program    string `json:"program"`
	Event      string `json:"event"`
	PID        int    `json:"pid,omitempty"`
	OldPID     int    `json:"old_pid,omitempty"`
	Reason     string `json:"reason,omitempty"`
	ExitStatus *int   `json:"exit_status,omitempty"`
	Signal     *int   `json:"signal,omitempty"`
	Restarts   int    `json:"restarts"`
	Monitor    string `json:"monitor,omitempty"`
	Skipped    int    `json:"skipped,omitempty"` // runs skipped by the rate limit since the last one
}

// hookLimiter is the rate limit of hooks: the last run and the runs
// skipped since, by program and event.
type hookLimiter struct {
	mu      sync.Mutex
	last    map[string]time.Time
	skipped map[string]int
}

// allow reports whether a hook may run now for key, and how many runs were
// skipped since the last one.
func (h *hookLimiter) allow(key string, now time.Time) (bool, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.last, h.skipped = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := h.last[key]; ok && now.Sub(t) < hookLimit {
		h.skipped[key]++
		return false, 0
	}
	n := h.skipped[key]
	h.last[key], h.skipped[key] = now, 0
	return true, n
}

// hook runs the program's hook for ev, if it has one for that event.
func (l *loop) hook(ev Event) {
	pc := ev.Config
	if pc == nil || pc.HookCommand == "" {
		return
	}
	name, ok := hookEventNames[ev.Kind]
	if !ok || !slices.Contains(pc.HookEvents, name) {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = l.m.now()
	}
	allow, skipped := l.hooks.allow(pc.Name+" "+name, ev.Time)
	if !allow {
		return
	}
	rec := hookRecord{Time: ev.Time.Format(time.RFC3339Nano), Program: pc.Name, Event: name, PID: ev.PID, OldPID: ev.OldPID,
		Reason: ev.Reason, Restarts: ev.Restarts, Monitor: ev.Monitor, Skipped: skipped}
	if e := ev.Exit; e != nil && e.Known {
		if e.Exited {
			rec.ExitStatus = &e.Status
		} else {
			rec.Signal = &e.Signal
		}
	}
	line, _ := json.Marshal(rec)
	env := append(programEnv(pc, l.m.environ()), "USRSVC_PROGRAM="+pc.Name, "USRSVC_EVENT="+name,
		"USRSVC_REASON="+ev.Reason, "USRSVC_PID="+strconv.Itoa(ev.PID))
	l.spawn(func() {
		if err := runHook(l.ctx, pc, env, append(line, '\n')); err != nil {
			l.m.log.Warn(fmt.Sprintf("%s: hook for %s failed: %v", pc.Name, name, err),
				"program", pc.Name, "event", "hook-failed", "hook_event", name)
		}
	})
}

// runHook runs pc's hook command with env and input on its stdin, its
// output appended to the program's stderr file, and waits for it, at most
// its timeout (then its process group is killed). When ctx ends first
// (usrsvcd stops), it stops waiting: the hook goes on by itself.
func runHook(ctx context.Context, pc *Program, env []string, input []byte) error {
	var sh shellcmd.Parser
	h, _ := home.Dir()
	argv, err := sh.Args(pc.HookCommand, h)
	if err != nil || len(argv) == 0 {
		return fmt.Errorf("command %q: %v", pc.HookCommand, err)
	}
	dir := pc.Dir
	if dir == "" {
		dir = h
	}
	path, err := lookPath(argv[0], env, dir)
	if err != nil {
		return err
	}
	timeout := pc.HookTimeout
	if timeout <= 0 {
		timeout = defaultHookTimeout
	}
	// Its stdin: the JSON line in a pipe (it fits a pipe's buffer), so no
	// goroutine copies it; its output: the program's stderr file.
	stdin, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer stdin.Close()
	_, err = w.Write(input)
	w.Close()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(pc.Stderr, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		out = nil // then nowhere
	} else {
		defer out.Close()
	}
	// A session of its own: neither usrsvcd's terminal nor its signals.
	p, err := os.StartProcess(path, append([]string{argv[0]}, argv[1:]...), &os.ProcAttr{
		Dir: dir, Env: env, Files: []*os.File{stdin, out, out}, Sys: &syscall.SysProcAttr{Setsid: true}})
	if err != nil {
		return err
	}
	pid := p.Pid
	p.Release() // reaped below, with wait4, once its pidfd says it ended
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	waitChild(wctx, pid)
	var ws syscall.WaitStatus
	switch wpid, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); {
	case wpid == pid && ws.Exited() && ws.ExitStatus() == 0:
		return nil
	case wpid == pid:
		return fmt.Errorf("%s: %s", argv[0], exitStatusOf(ws, time.Time{}))
	case ctx.Err() != nil:
		return nil // usrsvcd stops: the hook goes on by itself
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	syscall.Wait4(pid, &ws, 0, nil)
	return fmt.Errorf("%s ran longer than its timeout (%v): killed with its process group", argv[0], timeout)
}

// waitChild waits until the child pid ends, or ctx does.
func waitChild(ctx context.Context, pid int) {
	if pfd, err := proc.PidfdOpen(pid); err == nil {
		defer pfd.Close()
		pfd.Wait(ctx)
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// Without pidfds (before Linux 5.3): a child that ended is a
		// zombie until runHook reaps it.
		if q, err := proc.Default().Stat(pid); err != nil || q.Zombie() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
