package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// timing is the outcome of -time: wall times, and with -cg the CPU of each
// run (the command and all it started) and the programs' own CPU.
type timing struct {
	wall, cpu []time.Duration
	// rcpu is the CPU time of each run's process and the children it
	// waited for (wait4's rusage): steadier than wall time on a busy machine.
	rcpu     []time.Duration
	progCPU  time.Duration // of the last run
	progs    int
	cpuError string
}

func (t timing) line() string {
	s := durLine("TIME", t.wall)
	if len(t.rcpu) > 0 {
		s += fmt.Sprintf(" rcpu_ms=%.2f", ms(median(t.rcpu)))
	}
	switch {
	case t.cpuError != "":
		s += " cpu_ms=n/a"
	case len(t.cpu) > 0:
		s += fmt.Sprintf(" cpu_ms=%.2f prog_cpu_ms=%.2f progs=%d", ms(median(t.cpu)), ms(t.progCPU), t.progs)
	}
	return s
}

// durLine formats the median, min and max of ds.
func durLine(tag string, ds []time.Duration) string {
	if len(ds) == 0 {
		return tag + " n=0"
	}
	return fmt.Sprintf("%s median_ms=%.1f min_ms=%.1f max_ms=%.1f n=%d", tag, ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)), len(ds))
}

// timeCmd runs args n times (stdout and stderr to /dev/null). With cg each
// run is also measured in a cgroup of its own; with progTok, the CPU used so
// far by the processes titled *progTok* after the last run is reported apart.
func timeCmd(n int, cg bool, progTok string, args ...string) (timing, error) {
	var t timing
	if len(args) == 0 {
		return t, errors.New("no command")
	}
	self, _ := os.Executable()
	for i := 0; i < n; i++ {
		argv := args
		var dir string
		if cg && t.cpuError == "" {
			var err error
			if dir, err = cgNew(); err != nil {
				t.cpuError = err.Error()
			} else {
				argv = append([]string{self, "-joincg", dir, "--"}, args...)
			}
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = nil, nil // /dev/null
		t0 := time.Now()
		err := cmd.Run()
		t.wall = append(t.wall, time.Since(t0))
		if ps := cmd.ProcessState; ps != nil {
			t.rcpu = append(t.rcpu, ps.UserTime()+ps.SystemTime())
		}
		if dir != "" {
			if i == n-1 && progTok != "" {
				t.progCPU, t.progs = schedSum(progTok)
			}
			if d, err := cgCPU(dir); err == nil {
				t.cpu = append(t.cpu, d)
			} else {
				t.cpuError = err.Error()
			}
			if err := cgDel(dir); err != nil {
				fmt.Fprintln(os.Stderr, "time: removing", dir+":", err)
			}
		}
		if err != nil {
			return t, fmt.Errorf("%s: %w", strings.Join(args, " "), err)
		}
	}
	return t, nil
}

// medianSpawn is the run with the median wall time of rs.
func medianSpawn(rs []spawnResult) spawnResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b spawnResult) int { return cmpInt(int(a.wall), int(b.wall)) })
	return s[len(s)/2]
}

// rereads sends SIGUSR1 to usrsvcd n times and times each until the
// acknowledgement file's generation grows (polled every 0.2 ms).
func rereads(pid int, ack string, n int) ([]time.Duration, error) {
	var ds []time.Duration
	for i := 0; i < n; i++ {
		g0 := readGen(ack)
		t0 := time.Now()
		if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
			return ds, err
		}
		for readGen(ack) <= g0 {
			if time.Since(t0) > 30*time.Second {
				return ds, fmt.Errorf("no reread acknowledgement after 30 s (generation %d)", g0)
			}
			time.Sleep(200 * time.Microsecond)
		}
		ds = append(ds, time.Since(t0))
		time.Sleep(100 * time.Millisecond)
	}
	return ds, nil
}

func waitFor(tok string, count int, timeout time.Duration, args ...string) (total, cmdTime time.Duration, err error) {
	t0 := time.Now()
	if len(args) > 0 {
		cmd := exec.Command(args[0], args[1:]...)
		err = cmd.Run()
		cmdTime = time.Since(t0)
		if err != nil {
			return time.Since(t0), cmdTime, fmt.Errorf("%s: %w", strings.Join(args, " "), err)
		}
	}
	for {
		if n := len(scan(contains(tok))); n >= count {
			return time.Since(t0), cmdTime, nil
		} else if time.Since(t0) > timeout {
			return time.Since(t0), cmdTime, fmt.Errorf("only %d of %d after %v", n, count, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type diff struct{ programs, restarted, duplicates, missing, unchanged int }

func diffPids(file, tok string) (diff, error) {
	var d diff
	data, err := os.ReadFile(file)
	if err != nil {
		return d, err
	}
	before := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		t, p, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		before[t], _ = strconv.Atoi(p)
	}
	now := map[string][]int{}
	for _, p := range scan(contains(tok)) {
		now[p.title] = append(now[p.title], p.pid)
	}
	d.programs = len(before)
	for t, pid := range before {
		ps := now[t]
		switch {
		case len(ps) == 0:
			d.missing++
		case len(ps) > 1:
			d.duplicates++
			d.restarted++
		case ps[0] != pid:
			d.restarted++
		default:
			d.unchanged++
		}
	}
	return d, nil
}
