package main

import (
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

// memory is a process's resident memory, in kB, as the benchmarks report it.
// anon (RssAnon of /proc/PID/status: its heap, stacks and other private
// anonymous pages) is the figure judged: what the process itself holds.
// pss (Pss of /proc/PID/smaps_rollup) adds its share of the file pages it
// maps (its binary, shared libraries), each page divided by the number of
// processes mapping it. rss (VmRSS) counts every mapped file page whole,
// however many processes share it, and pages of a cached file mapped
// again after they were dropped: shown for reference only.
type memory struct {
	anon, pss, pssAnon, rss, file, shmem, threads int64
}

// readMemory reads pid's memory from /proc/PID/status and smaps_rollup.
func readMemory(pid int) (memory, error) {
	st := fmt.Sprintf("/proc/%d/status", pid)
	m := memory{
		anon: statusField(st, "RssAnon:"), rss: statusField(st, "VmRSS:"), file: statusField(st, "RssFile:"),
		shmem: statusField(st, "RssShmem:"), threads: statusField(st, "Threads:"),
	}
	if m.rss == 0 {
		return m, fmt.Errorf("pid %d: no VmRSS in %s", pid, st)
	}
	roll := fmt.Sprintf("/proc/%d/smaps_rollup", pid)
	m.pss, m.pssAnon = statusField(roll, "Pss:"), statusField(roll, "Pss_Anon:")
	if m.pss == 0 {
		return m, fmt.Errorf("pid %d: no Pss in %s", pid, roll)
	}
	return m, nil
}

// mb formats kB as MB with one decimal.
func mb(kb int64) string { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }

// String is the figure and its parts, for a table cell.
func (m memory) String() string {
	return fmt.Sprintf("RssAnon %s; PSS %s; VmRSS %s (files %s); %d threads", mb(m.anon), mb(m.pss), mb(m.rss), mb(m.file), m.threads)
}

// memLine describes pid's memory for the scripts (-mem): RssAnon, PSS,
// VmRSS and its parts, and its threads; "MEM error=..." when unreadable.
func memLine(pid int) string {
	m, err := readMemory(pid)
	if err != nil {
		return "MEM error=" + strings.ReplaceAll(err.Error(), " ", "_")
	}
	return fmt.Sprintf("MEM anon_kb=%d pss_kb=%d pss_anon_kb=%d rss_kb=%d file_kb=%d shmem_kb=%d threads=%d",
		m.anon, m.pss, m.pssAnon, m.rss, m.file, m.shmem, m.threads)
}
