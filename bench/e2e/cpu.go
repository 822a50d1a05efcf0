package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// cpuSample is what a process used up to a moment, or over a window.
type cpuSample struct {
	all, leader time.Duration // schedstat run time: all threads, the leader thread
	statTicks   int64         // utime + stime of /proc/PID/stat
	// switches counts the context switches of all threads (voluntary and
	// not): each is a wake-up of a thread that slept.
	switches int64
	threads  int
	dur      time.Duration
}

func (c cpuSample) pct() float64 { return 100 * float64(c.all) / float64(c.dur) }

func readCPU(pid int) (cpuSample, error) {
	var c cpuSample
	var err error
	if c.leader, err = readSchedstat(fmt.Sprintf("/proc/%d/schedstat", pid)); err != nil {
		return c, err
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return c, err
	}
	for _, t := range tasks {
		dir := fmt.Sprintf("/proc/%d/task/%s/", pid, t.Name())
		if d, err := readSchedstat(dir + "schedstat"); err == nil {
			c.all += d
			c.threads++
		}
		c.switches += statusField(dir+"status", "voluntary_ctxt_switches:") +
			statusField(dir+"status", "nonvoluntary_ctxt_switches:")
	}
	p, err := proc.Default().Stat(pid)
	if err != nil {
		return c, err
	}
	c.statTicks = int64(p.UTime + p.STime)
	return c, nil
}

// statusField reads a numeric "Name: value" line of a /proc status file.
func statusField(path, name string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// measureCPU returns the CPU time pid used (schedstat, ns) over d: the
// leader thread's (/proc/PID/schedstat) and all threads' (task/*/schedstat),
// plus utime+stime ticks of /proc/PID/stat and the context switches.
func measureCPU(pid int, d time.Duration) (cpuSample, error) {
	a, err := readCPU(pid)
	if err != nil {
		return a, err
	}
	t0 := time.Now()
	time.Sleep(d)
	b, err := readCPU(pid)
	dur := time.Since(t0)
	return cpuSample{all: b.all - a.all, leader: b.leader - a.leader, statTicks: b.statTicks - a.statTicks,
		switches: b.switches - a.switches, threads: b.threads, dur: dur}, err
}

func vmRSS(pid int) (kb int, err error) {
	n := statusField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
	if n == 0 {
		return 0, errors.New("no VmRSS")
	}
	return int(n), nil
}

// memLine describes pid's memory: VmRSS and its parts, and its threads.
func memLine(pid int) string {
	st := fmt.Sprintf("/proc/%d/status", pid)
	return fmt.Sprintf("MEM rss_kb=%d anon_kb=%d file_kb=%d shmem_kb=%d threads=%d",
		statusField(st, "VmRSS:"), statusField(st, "RssAnon:"), statusField(st, "RssFile:"),
		statusField(st, "RssShmem:"), statusField(st, "Threads:"))
}
