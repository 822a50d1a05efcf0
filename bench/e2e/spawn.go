package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// spawnResult is the floor of starting n programs: a shell that starts them
// bare (fork + exec, stdin/stdout/stderr redirected, in the background), the
// physical cost of those processes on this machine at this moment.
type spawnResult struct {
	n        int
	wall     time.Duration // shell start → the last program has exec'd
	cpu      time.Duration // shell + programs (cgroup), 0 when unavailable
	progCPU  time.Duration // the programs' own share (their schedstat)
	cpuError string
	method   string
}

func (s spawnResult) line() string {
	cpu := fmt.Sprintf("cpu_ms=%.2f prog_cpu_ms=%.2f cpu_per_us=%.0f", ms(s.cpu), ms(s.progCPU), us(s.cpu)/float64(s.n))
	if s.cpuError != "" {
		cpu = "cpu_ms=n/a"
	}
	return fmt.Sprintf("SPAWN n=%d wall_ms=%.1f per_us=%.0f %s", s.n, ms(s.wall), us(s.wall)/float64(s.n), cpu)
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

// spawnFloor starts titles with bash — `$t </dev/null >/dev/null 2>&1 &` per
// line — and measures until every one has exec'd, then kills them (by pid,
// through a pidfd) and waits until they are gone or zombies. With cg, the
// CPU of the shell and the programs is measured in a cgroup.
func spawnFloor(titles []string, cg bool) (spawnResult, error) {
	r := spawnResult{n: len(titles), cpuError: "not measured"}
	var dir string
	if cg {
		r.cpuError = ""
		var err error
		if dir, err = cgNew(); err != nil {
			r.cpuError = err.Error()
		} else {
			defer cgDel(dir)
		}
	}
	script := `while IFS= read -r t; do $t </dev/null >/dev/null 2>&1 & done`
	// The clock starts at the shell's exec where the kernel tells it (so the
	// cgroup helper's own start is not counted), else before the fork.
	w := newExecWatch(titles, nil, "bash -c "+script)
	r.method = w.method
	args := []string{"bash", "-c", script}
	if dir != "" {
		self, _ := os.Executable()
		args = append([]string{self, "-joincg", dir, "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(strings.Join(titles, "\n") + "\n")
	t0 := monoNow()
	if err := cmd.Run(); err != nil {
		w.close()
		return r, fmt.Errorf("spawn: %w", err)
	}
	seen, missing := w.wait(60 * time.Second)
	defer killSpawned(titles)
	if missing > 0 {
		return r, fmt.Errorf("spawn: %d of %d programs never exec'd within 60 s", missing, len(titles))
	}
	if m := w.markerTime(); m > t0 {
		t0 = m
	}
	for _, ts := range seen {
		if d := ts - t0; d > r.wall {
			r.wall = d
		}
	}
	if dir != "" {
		// The programs' share first, then the total (it includes them).
		set := map[string]bool{}
		for _, t := range titles {
			set[t] = true
		}
		for _, p := range scan(func(t string) bool { return set[t] }) {
			if d, err := readSchedstat(fmt.Sprintf("/proc/%d/schedstat", p.pid)); err == nil {
				r.progCPU += d
			}
		}
		var err error
		if r.cpu, err = cgCPU(dir); err != nil {
			r.cpuError = err.Error()
		}
	}
	return r, nil
}

// killSpawned kills the floor's programs and waits (5 s at most) until none
// is left alive.
func killSpawned(titles []string) {
	set := map[string]bool{}
	for _, t := range titles {
		set[t] = true
	}
	match := func(t string) bool { return set[t] }
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		ps := scan(match)
		if len(ps) == 0 {
			return
		}
		for _, p := range ps {
			killPid(p.pid, match)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			out = append(out, t)
		}
	}
	return out, sc.Err()
}

// massKill is the daemon's answer to all its programs killed at once.
type massKill struct {
	killed, back  int
	swept         int // found in /proc, not by an exec event
	last, median  time.Duration
	first         time.Duration
	method, error string
}

func (m massKill) line() string {
	s := fmt.Sprintf("MASSKILL killed=%d back=%d first_ms=%.1f median_ms=%.1f last_ms=%.1f swept=%d", m.killed, m.back, ms(m.first), ms(m.median), ms(m.last), m.swept)
	if m.error != "" {
		s += " error=" + strings.ReplaceAll(m.error, " ", "_")
	}
	return s
}

// massKillTitles SIGKILLs every live process of ours titled with one of
// titles, all at once (pidfds opened first, then one signal each), and
// measures until a new process with each title has exec'd.
func massKillTitles(titles []string, timeout time.Duration) (massKill, error) {
	var r massKill
	set := map[string]bool{}
	for _, t := range titles {
		set[t] = true
	}
	ps := scan(func(t string) bool { return set[t] })
	if len(ps) != len(titles) {
		return r, fmt.Errorf("masskill: %d of %d programs running before the kill", len(ps), len(titles))
	}
	var pfds []*proc.Pidfd
	ignore := map[int]uint64{}
	for _, p := range ps {
		pfd, err := proc.PidfdOpen(p.pid)
		if err != nil {
			return r, fmt.Errorf("masskill: pidfd %d: %w", p.pid, err)
		}
		defer pfd.Close()
		pfds = append(pfds, pfd)
		ignore[p.pid] = p.start
	}
	w := newExecWatch(titles, ignore, "")
	r.method = w.method
	t0 := monoNow()
	for _, pfd := range pfds {
		if err := pfd.Signal(syscall.SIGKILL); err == nil {
			r.killed++
		}
	}
	seen, missing := w.wait(timeout)
	var ds []time.Duration
	if m := w.markerTime(); m > t0 {
		t0 = m
	}
	for _, ts := range seen {
		ds = append(ds, ts-t0)
	}
	r.back = len(ds)
	r.swept = w.sweptCount()
	if len(ds) > 0 {
		r.first, r.last = slices.Min(ds), slices.Max(ds)
		r.median = median(ds)
	}
	if missing > 0 {
		r.error = fmt.Sprintf("%d of %d not back within %v", missing, len(titles), timeout)
		return r, errors.New("masskill: " + r.error)
	}
	return r, nil
}
