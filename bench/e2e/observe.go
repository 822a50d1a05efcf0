package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/proc"
	"golang.org/x/sys/unix"
)

// subreaperMain makes this process a child subreaper, starts args as its
// child and reaps every process that comes back to it at once (wait4(-1)),
// until none is left. SIGTERM/SIGINT are forwarded to the direct child.
func subreaperMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "subreaper: no command")
		return 2
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "subreaper: prctl:", err)
		return 1
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "subreaper:", err)
		return 1
	}
	child := cmd.Process.Pid
	go func() {
		for s := range sigs {
			_ = syscall.Kill(child, s.(syscall.Signal))
		}
	}()
	code := 0
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil { // ECHILD: nothing left to reap
			return code
		}
		if pid == child {
			code = ws.ExitStatus()
		}
	}
}

type observed struct {
	lat, reap    []time.Duration
	reapTimeouts int
	ppids        []int
}

func (o observed) line() string {
	if len(o.lat) == 0 {
		return "OBSERVE n=0"
	}
	s := fmt.Sprintf("OBSERVE n=%d median_ms=%.1f min_ms=%.1f max_ms=%.1f", len(o.lat), ms(median(o.lat)), ms(slices.Min(o.lat)), ms(slices.Max(o.lat)))
	if len(o.reap) > 0 {
		s += fmt.Sprintf(" reap_median_ms=%.1f reap_max_ms=%.1f", ms(median(o.reap)), ms(slices.Max(o.reap)))
	}
	s += fmt.Sprintf(" reap_timeouts=%d", o.reapTimeouts)
	var all []string
	for _, d := range o.lat {
		all = append(all, fmt.Sprintf("%.1f", ms(d)))
	}
	s += " all_ms=" + strings.Join(all, ",")
	if len(o.ppids) > 0 {
		s += fmt.Sprintf(" ppid=%d", o.ppids[len(o.ppids)-1])
	}
	return s
}

// observeKills kills the process titled title (exactly) n times with
// SIGKILL and measures, polling /proc every ≤2 ms, how long until a new
// non-zombie process with that title exists. Each kill comes 1 s + rand(0-2 s)
// after the new process appeared (a kill inside the success window is a
// failed start, which backs off by design). It also measures how long the
// killed process lingers (zombie until its parent reaps it). beforeKill,
// when not nil, runs before each kill, outside the timing: for usrsvcd,
// a manual start of the running program, which ends its crash series
// (kills seconds apart are a crash loop, which usrsvcd backs off by
// design; each measured kill is then a first crash).
func observeKills(title string, n int, beforeKill func() error) (observed, error) {
	var o observed
	match := func(t string) bool { return t == title }
	find := func() (pinfo, bool) {
		ps := scan(match)
		if len(ps) == 0 {
			return pinfo{}, false
		}
		return ps[0], true
	}
	// Wait for the first process (up to 30 s).
	var cur pinfo
	for deadline := time.Now().Add(30 * time.Second); ; {
		if p, ok := find(); ok {
			cur = p
			break
		}
		if time.Now().After(deadline) {
			return o, fmt.Errorf("no process titled %q", title)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // past the success window of the first start
	if p, ok := find(); ok {
		cur = p
	}
	// One warm-up kill, not counted: the measured kills then all hit processes
	// the manager itself (re)started, whoever started the first one.
	for i := -1; i < n; i++ {
		if beforeKill != nil {
			if err := beforeKill(); err != nil {
				return o, fmt.Errorf("before kill %d: %w", i+1, err)
			}
		}
		pfd, err := proc.PidfdOpen(cur.pid)
		if err != nil {
			return o, fmt.Errorf("pidfd %d: %w", cur.pid, err)
		}
		t0 := time.Now()
		if err := pfd.Signal(syscall.SIGKILL); err != nil {
			pfd.Close()
			return o, fmt.Errorf("kill %d: %w", cur.pid, err)
		}
		var next pinfo
		found := false
		for time.Since(t0) < 30*time.Second {
			if p, ok := find(); ok && (p.pid != cur.pid || p.start != cur.start) {
				next, found = p, true
				break
			}
			time.Sleep(time.Millisecond)
		}
		appeared := time.Now()
		pfd.Close()
		if !found {
			return o, fmt.Errorf("kill %d: no new process within 30 s", i+1)
		}
		if i >= 0 {
			o.lat = append(o.lat, appeared.Sub(t0))
		}
		// How long the old pid stays in /proc (a zombie until reaped), measured
		// while we wait for the next kill.
		wait := time.Second + time.Duration(rand.Int64N(int64(2*time.Second)))
		reaped := false
		for time.Since(appeared) < wait {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d/stat", cur.pid)); err != nil && !reaped {
				if i >= 0 {
					o.reap = append(o.reap, time.Since(t0))
				}
				reaped = true
			}
			if reaped {
				time.Sleep(wait - time.Since(appeared))
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if !reaped && i >= 0 {
			o.reapTimeouts++
		}
		if p, ok := find(); ok {
			cur = p
		} else {
			cur = next
		}
		if i >= 0 {
			o.ppids = append(o.ppids, cur.ppid) // once the launcher has gone
		}
	}
	return o, nil
}
