// Command e2e measures usrsvc and usrsvcd end to end with the real binaries
// (bench/e2e.sh builds them and runs it), and offers small helper modes that
// bench/compare.sh uses against supervisord and monit:
//
//	e2e -bin DIR -dir WORLD -run ID [-n 200] [-idle 60s] [-kills 10]   the e2e table
//	e2e -subreaper -- CMD ARGS...   become a child subreaper, run CMD, reap everything at once
//	e2e -observe TITLE [-kills 10]  kill -9 the process titled TITLE, time until a new one runs
//	e2e -cpu PID [-dur 30s]         CPU time of PID (all threads) over a window
//	e2e -time N -- CMD ARGS...      median/min/max wall time of CMD over N runs
//	e2e -waitfor TOKEN -count N -- CMD ARGS...  run CMD, then wait for N live processes titled *TOKEN*
//	e2e -pids TOKEN                 "title<TAB>pid" of our live processes titled *TOKEN*
//	e2e -diffpids FILE -token TOKEN compare with an earlier -pids listing (restarted, duplicates)
//	e2e -cleanup TOKEN[,TOKEN...]   SIGKILL (by pid, through a pidfd) our processes titled *TOKEN*
//
// Every process it starts is stopped at the end, even on failure or SIGINT.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/proc"
)

var (
	fBin       = flag.String("bin", "", "directory holding usrsvc and usrsvcd")
	fDir       = flag.String("dir", "", "world directory (HOME of the run); created if missing")
	fRun       = flag.String("run", "", "run id (digits) making the program titles unique")
	fN         = flag.Int("n", 200, "programs in the large world")
	fIdle      = flag.Duration("idle", 60*time.Second, "idle CPU window")
	fKills     = flag.Int("kills", 10, "kill -9 repetitions")
	fRepeat    = flag.Int("repeat", 10, "repetitions of the timed commands")
	fSections  = flag.String("sections", "start,status,rss,idle,reread,daemonkill,kill1,kill1sub", "sections to run")
	fSubreaper = flag.Bool("subreaper", false, "helper: run the command after -- as a child subreaper")
	fObserve   = flag.String("observe", "", "helper: title of the process to kill and watch")
	fCPU       = flag.Int("cpu", 0, "helper: pid whose CPU time to measure")
	fDur       = flag.Duration("dur", 30*time.Second, "helper: -cpu window")
	fTime      = flag.Int("time", 0, "helper: run the command after -- this many times")
	fWaitFor   = flag.String("waitfor", "", "helper: title token to wait for after the command")
	fCount     = flag.Int("count", 0, "helper: -waitfor count")
	fTimeout   = flag.Duration("timeout", 120*time.Second, "helper: -waitfor timeout")
	fPids      = flag.String("pids", "", "helper: list our processes titled *TOKEN*")
	fDiffPids  = flag.String("diffpids", "", "helper: earlier -pids listing to compare with")
	fToken     = flag.String("token", "", "helper: title token for -diffpids")
	fCleanup   = flag.String("cleanup", "", "helper: comma-separated title tokens to SIGKILL")
)

func main() {
	flag.Parse()
	var code int
	switch {
	case *fSubreaper:
		code = subreaperMain(flag.Args())
	case *fObserve != "":
		r, err := observeKills(*fObserve, *fKills)
		if err != nil {
			fmt.Fprintln(os.Stderr, "observe:", err)
			code = 1
		}
		fmt.Println(r.line())
	case *fCPU != 0:
		c, err := measureCPU(*fCPU, *fDur)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cpu:", err)
			code = 1
		}
		fmt.Printf("CPU all_threads_ms=%.2f leader_ms=%.2f stat_ms=%d pct=%.4f dur=%v\n",
			ms(c.all), ms(c.leader), c.statTicks*10, c.pct(), c.dur)
	case *fTime > 0:
		t, err := timeCmd(*fTime, flag.Args()...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "time:", err)
			code = 1
		}
		fmt.Printf("TIME median_ms=%.1f min_ms=%.1f max_ms=%.1f n=%d\n", ms(median(t)), ms(slices.Min(t)), ms(slices.Max(t)), len(t))
	case *fWaitFor != "":
		total, cmdTime, err := waitFor(*fWaitFor, *fCount, *fTimeout, flag.Args()...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "waitfor:", err)
			code = 1
		}
		fmt.Printf("WAIT total_ms=%.0f cmd_ms=%.0f\n", ms(total), ms(cmdTime))
	case *fPids != "":
		for _, p := range scan(contains(*fPids)) {
			fmt.Printf("%s\t%d\n", p.title, p.pid)
		}
	case *fDiffPids != "":
		d, err := diffPids(*fDiffPids, *fToken)
		if err != nil {
			fmt.Fprintln(os.Stderr, "diffpids:", err)
			code = 1
		}
		fmt.Printf("DIFF programs=%d restarted=%d duplicates=%d missing=%d unchanged=%d\n", d.programs, d.restarted, d.duplicates, d.missing, d.unchanged)
	case *fCleanup != "":
		fmt.Printf("CLEANUP killed=%d\n", killTokens(strings.Split(*fCleanup, ",")))
	default:
		code = e2eMain()
	}
	os.Exit(code)
}

// ---------------------------------------------------------------- /proc scans

type pinfo struct {
	pid, ppid int
	title     string
	start     uint64
	state     byte
}

func contains(tok string) func(string) bool {
	return func(t string) bool { return strings.Contains(t, tok) }
}

// scan lists our (same uid) live, non-zombie processes whose title matches:
// one readdir of /proc, one read of cmdline per process, one of stat per match.
// It is the observer's poll, so it reuses one buffer and skips os.ReadFile.
func scan(match func(string) bool) []pinfo {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	uid, self := os.Getuid(), os.Getpid()
	buf := make([]byte, 4096)
	var out []pinfo
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self { // our own title may hold the token
			continue
		}
		b := readInto(buf, "/proc/"+name+"/cmdline")
		if len(b) == 0 {
			continue // kernel thread, zombie, or gone
		}
		title := strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
		if !match(title) {
			continue
		}
		p, err := proc.Default().Stat(pid)
		if err != nil || p.Zombie() || p.UID != uid {
			continue
		}
		out = append(out, pinfo{pid: pid, ppid: p.PPID, title: title, start: p.StartTicks, state: p.State})
	}
	slices.SortFunc(out, func(a, b pinfo) int { return strings.Compare(a.title, b.title)*2 + cmpInt(a.pid, b.pid) })
	return out
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func readInto(buf []byte, path string) []byte {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, buf)
	if err != nil || n <= 0 {
		return nil
	}
	return buf[:n]
}

// killPid sends SIGKILL through a pidfd, after re-checking that the pid still
// carries a title with tok (so a reused pid is never hit).
func killPid(pid int, match func(string) bool) bool {
	pfd, err := proc.PidfdOpen(pid)
	if err != nil {
		return false
	}
	defer pfd.Close()
	p, err := proc.Default().Process(pid)
	if err != nil || p.Zombie() || !match(p.Title) {
		return false
	}
	return pfd.Signal(syscall.SIGKILL) == nil
}

// killTokens kills every process of ours (but us and our ancestors) whose
// title contains one of toks, until none is left (5 s at most).
func killTokens(toks []string) int {
	skip := map[int]bool{}
	for pid := os.Getpid(); pid > 1; {
		skip[pid] = true
		p, err := proc.Default().Stat(pid)
		if err != nil {
			break
		}
		pid = p.PPID
	}
	match := func(t string) bool {
		for _, tok := range toks {
			if tok != "" && strings.Contains(t, tok) {
				return true
			}
		}
		return false
	}
	killed := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		left := 0
		for _, p := range scan(match) {
			if skip[p.pid] {
				continue
			}
			left++
			if killPid(p.pid, match) {
				killed++
			}
		}
		if left == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return killed
}

// ---------------------------------------------------------------- helpers

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

func timeCmd(n int, args ...string) ([]time.Duration, error) {
	if len(args) == 0 {
		return nil, errors.New("no command")
	}
	var out []time.Duration
	for i := 0; i < n; i++ {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = nil, nil // /dev/null
		t0 := time.Now()
		err := cmd.Run()
		out = append(out, time.Since(t0))
		if err != nil {
			return out, fmt.Errorf("%s: %w", strings.Join(args, " "), err)
		}
	}
	return out, nil
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

// ---------------------------------------------------------------- CPU

type cpuSample struct {
	all, leader time.Duration
	statTicks   int64
	dur         time.Duration
}

func (c cpuSample) pct() float64 { return 100 * float64(c.all) / float64(c.dur) }

func readCPU(pid int) (cpuSample, error) {
	var c cpuSample
	read := func(path string) (time.Duration, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s: empty", path)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		return time.Duration(n), err
	}
	var err error
	if c.leader, err = read(fmt.Sprintf("/proc/%d/schedstat", pid)); err != nil {
		return c, err
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return c, err
	}
	for _, t := range tasks {
		if d, err := read(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name())); err == nil {
			c.all += d
		}
	}
	p, err := proc.Default().Stat(pid)
	if err != nil {
		return c, err
	}
	c.statTicks = int64(p.UTime + p.STime)
	return c, nil
}

// measureCPU returns the CPU time pid used (schedstat, ns) over d: the
// leader thread's (/proc/PID/schedstat) and all threads' (task/*/schedstat),
// plus utime+stime ticks of /proc/PID/stat.
func measureCPU(pid int, d time.Duration) (cpuSample, error) {
	a, err := readCPU(pid)
	if err != nil {
		return a, err
	}
	t0 := time.Now()
	time.Sleep(d)
	b, err := readCPU(pid)
	dur := time.Since(t0)
	return cpuSample{all: b.all - a.all, leader: b.leader - a.leader, statTicks: b.statTicks - a.statTicks, dur: dur}, err
}

func vmRSS(pid int) (kb int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, errors.New("no VmRSS")
}

// ---------------------------------------------------------------- subreaper

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

// ---------------------------------------------------------------- observer

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
// killed process lingers (zombie until its parent reaps it).
func observeKills(title string, n int) (observed, error) {
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

// ---------------------------------------------------------------- the e2e run

type world struct {
	dir, bin, run string
	cfg200        string
	cfg10, cfg1   string
	titles        []string // of the n programs
	killTitle     string
	log           *os.File
}

type row struct{ measure, goal, result, pass, cmd string }

var rows []row

func addRow(measure, goal, result string, pass *bool, cmd string) {
	p := "n/a"
	if pass != nil {
		p = map[bool]string{true: "PASS", false: "**MISS**"}[*pass]
	}
	rows = append(rows, row{measure, goal, result, p, cmd})
	fmt.Fprintf(os.Stderr, "e2e: %s: %s (%s)\n", measure, result, p)
}

func ptr(b bool) *bool { return &b }

func (w *world) program(name, command string) string {
	return fmt.Sprintf("[Program:%s]\ncommand = %s\npidfile = %s\nstdout = %s\nsuccess_seconds = 1\n",
		name, command, filepath.Join(w.dir, "pids", name+".pid"), filepath.Join(w.dir, "logs", name+".log"))
}

func (w *world) mainSection() string {
	return fmt.Sprintf("[Main]\npidfile = %s\nstate_dir = %s\nusrsvcd_stdout = %s\n",
		filepath.Join(w.dir, "usrsvcd.pid"), filepath.Join(w.dir, "state"), filepath.Join(w.dir, "usrsvcd.log"))
}

func (w *world) setup(n int) error {
	for _, sub := range []string{"pids", "logs"} {
		if err := os.MkdirAll(filepath.Join(w.dir, sub), 0o700); err != nil {
			return err
		}
	}
	var all, ten strings.Builder
	all.WriteString(w.mainSection())
	ten.WriteString(w.mainSection())
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("p%03d", i)
		cmd := fmt.Sprintf("/bin/sleep 86400.%s%03d", w.run, i)
		w.titles = append(w.titles, cmd)
		all.WriteString("\n" + w.program(name, cmd))
		if i <= 10 {
			ten.WriteString("\n" + w.program(name, cmd))
		}
	}
	w.killTitle = fmt.Sprintf("/bin/sleep 86401.%s001", w.run)
	one := w.mainSection() + "\n" + w.program("k001", w.killTitle)
	w.cfg200, w.cfg10, w.cfg1 = filepath.Join(w.dir, "usrsvc.cfg"), filepath.Join(w.dir, "usrsvc10.cfg"), filepath.Join(w.dir, "usrsvc1.cfg")
	for f, text := range map[string]string{w.cfg200: all.String(), w.cfg10: ten.String(), w.cfg1: one} {
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (w *world) tokens() []string {
	return []string{"sleep 86400." + w.run, "sleep 86401." + w.run, w.dir}
}

// cmd runs a binary of ours with HOME = the world; output goes to the run log.
func (w *world) cmd(name string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(w.bin, name), args...)
	c.Env = append(os.Environ(), "HOME="+w.dir)
	c.Stdout, c.Stderr = w.log, w.log
	return c
}

func (w *world) runTimed(name string, args ...string) (time.Duration, error) {
	c := w.cmd(name, args...)
	t0 := time.Now()
	err := c.Run()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return d, nil
}

// quiet: the command's stdout is discarded (status output), stderr to the log.
func (w *world) runQuiet(name string, args ...string) (time.Duration, error) {
	c := w.cmd(name, args...)
	c.Stdout = nil
	t0 := time.Now()
	err := c.Run()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return d, nil
}

func (w *world) running(titles []string) map[string][]pinfo {
	set := map[string]bool{}
	for _, t := range titles {
		set[t] = true
	}
	out := map[string][]pinfo{}
	for _, p := range scan(func(t string) bool { return set[t] }) {
		out[p.title] = append(out[p.title], p)
	}
	return out
}

func (w *world) daemonPID() (int, bool) {
	b, err := os.ReadFile(filepath.Join(w.dir, "usrsvcd.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	p, err := proc.Default().Stat(pid)
	if err != nil || p.Zombie() {
		return 0, false
	}
	return pid, true
}

func (w *world) waitDaemon(d time.Duration) (int, error) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if pid, ok := w.daemonPID(); ok {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("usrsvcd not up after %v", d)
}

func readGen(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	var a struct {
		Generation int64 `json:"generation"`
	}
	if json.Unmarshal(b, &a) != nil {
		return -1
	}
	return a.Generation
}

func waitGone(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		p, err := proc.Default().Stat(pid)
		if err != nil || p.Zombie() {
			return true
		}
	}
	return false
}

func (w *world) teardown() {
	fmt.Fprintln(os.Stderr, "e2e: teardown")
	for _, cfg := range []string{w.cfg1, w.cfg10, w.cfg200} {
		_ = w.cmd("usrsvcd", "--config", cfg, "stop").Run()
	}
	_ = w.cmd("usrsvc", "--config", w.cfg1, "-q", "stop", "all").Run()
	_ = w.cmd("usrsvc", "--config", w.cfg200, "-q", "-P", "stop", "all").Run()
	if n := killTokens(w.tokens()); n > 0 {
		fmt.Fprintf(os.Stderr, "e2e: teardown killed %d leftover processes\n", n)
	}
}

func e2eMain() int {
	if *fBin == "" || *fDir == "" || *fRun == "" {
		fmt.Fprintln(os.Stderr, "e2e: -bin, -dir and -run are required")
		return 2
	}
	if err := os.MkdirAll(*fDir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w := &world{dir: *fDir, bin: *fBin, run: *fRun}
	logf, err := os.OpenFile(filepath.Join(w.dir, "e2e-commands.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w.log = logf
	if err := w.setup(*fN); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Tear down on SIGINT/SIGTERM as well as on return.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		w.teardown()
		os.Exit(130)
	}()
	defer w.teardown()

	sections := map[string]bool{}
	for _, s := range strings.Split(*fSections, ",") {
		sections[s] = true
	}
	failed := false
	step := func(name string, f func() error) {
		if !sections[name] || failed && name != "kill1" && name != "kill1sub" {
			return
		}
		fmt.Fprintf(os.Stderr, "e2e: === %s\n", name)
		if err := f(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s FAILED: %v\n", name, err)
			rows = append(rows, row{name, "", "ERROR: " + err.Error(), "**FAIL**", ""})
			if name != "kill1" && name != "kill1sub" {
				failed = true
			}
		}
	}
	n := *fN
	cfg := w.cfg200
	step("start", func() error { return w.benchStart(cfg, n) })
	step("status", func() error { return w.benchStatus(cfg, n) })
	step("rss", func() error { return w.benchRSS(n) })
	step("idle", func() error { return w.benchIdle(n) })
	step("reread", func() error { return w.benchReread(n) })
	step("daemonkill", func() error { return w.benchDaemonKill(n) })
	// The large world is stopped before the kill tests (cheap scans).
	if sections["kill1"] || sections["kill1sub"] {
		_ = w.cmd("usrsvcd", "--config", cfg, "stop").Run()
		_ = w.cmd("usrsvc", "--config", cfg, "-q", "-P", "stop", "all").Run()
	}
	step("kill1", func() error { return w.benchKill(false) })
	step("kill1sub", func() error { return w.benchKill(true) })

	fmt.Printf("| Measure | Goal | Result | | Command |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s | %s |\n", r.measure, r.goal, r.result, r.pass, r.cmd)
	}
	if failed {
		return 1
	}
	return 0
}

func (w *world) benchStart(cfg string, n int) error {
	var starts, stops []time.Duration
	for r := 0; r < 3; r++ {
		if r > 0 {
			d, err := w.runTimed("usrsvc", "--config", cfg, "-q", "-P", "stop", "all")
			if err != nil {
				return err
			}
			stops = append(stops, d)
		}
		d, err := w.runTimed("usrsvc", "--config", cfg, "-q", "-P", "start", "all")
		if err != nil {
			return err
		}
		starts = append(starts, d)
		if got := len(w.running(w.titles)); got != n {
			return fmt.Errorf("after start all: %d of %d running", got, n)
		}
	}
	addRow(fmt.Sprintf("`usrsvc -P start all`, %d programs, success_seconds = 1 (3 runs)", n), "< 3 s",
		fmt.Sprintf("median %.0f ms (min %.0f, max %.0f)", ms(median(starts)), ms(slices.Min(starts)), ms(slices.Max(starts))),
		ptr(median(starts) < 3*time.Second), "usrsvc --config usrsvc.cfg -q -P start all")
	addRow(fmt.Sprintf("`usrsvc -P stop all`, %d programs (2 runs)", n), "—",
		fmt.Sprintf("median %.0f ms (min %.0f, max %.0f)", ms(median(stops)), ms(slices.Min(stops)), ms(slices.Max(stops))),
		nil, "usrsvc --config usrsvc.cfg -q -P stop all")
	return nil
}

func (w *world) benchStatus(cfg string, n int) error {
	for _, json := range []bool{false, true} {
		args := []string{"--config", cfg, "status", "all"}
		if json {
			args = []string{"--config", cfg, "--json", "status", "all"}
		}
		_, _ = w.runQuiet("usrsvc", args...) // warm the page cache
		var ds []time.Duration
		for i := 0; i < *fRepeat; i++ {
			d, err := w.runQuiet("usrsvc", args...)
			if err != nil {
				return err
			}
			ds = append(ds, d)
		}
		name := "`usrsvc status all`"
		if json {
			name = "`usrsvc --json status all`"
		}
		addRow(fmt.Sprintf("%s, %d running (median of %d)", name, n, len(ds)), "< 20 ms",
			fmt.Sprintf("median %.1f ms (min %.1f, max %.1f)", ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds))),
			ptr(median(ds) < 20*time.Millisecond), "usrsvc --config usrsvc.cfg "+strings.Join(args[2:], " ")+" >/dev/null")
	}
	return nil
}

func (w *world) benchRSS(n int) error {
	for _, c := range []struct {
		cfg string
		n   int
	}{{w.cfg10, 10}, {w.cfg200, n}} {
		d, err := w.runTimed("usrsvcd", "--config", c.cfg, "start")
		if err != nil {
			return err
		}
		pid, err := w.waitDaemon(5 * time.Second)
		if err != nil {
			return err
		}
		addRow(fmt.Sprintf("`usrsvcd start` adopting %d running programs", c.n), "—",
			fmt.Sprintf("%.0f ms", ms(d)), nil, "usrsvcd --config "+filepath.Base(c.cfg)+" start")
		time.Sleep(2 * time.Second)
		kb, err := vmRSS(pid)
		if err != nil {
			return err
		}
		addRow(fmt.Sprintf("usrsvcd VmRSS, %d programs supervised (2 s after start)", c.n), "< 15 MB",
			fmt.Sprintf("%.1f MB (%d kB)", float64(kb)/1024, kb), ptr(kb < 15*1024), "grep VmRSS /proc/$(cat usrsvcd.pid)/status")
		if c.n != n { // keep the big one running for the next sections
			if _, err := w.runTimed("usrsvcd", "--config", c.cfg, "stop"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *world) benchIdle(n int) error {
	pid, ok := w.daemonPID()
	if !ok {
		if _, err := w.runTimed("usrsvcd", "--config", w.cfg200, "start"); err != nil {
			return err
		}
		var err error
		if pid, err = w.waitDaemon(5 * time.Second); err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
	}
	c, err := measureCPU(pid, *fIdle)
	if err != nil {
		return err
	}
	kb, _ := vmRSS(pid)
	goal := float64(c.dur) * 0.0005
	addRow(fmt.Sprintf("usrsvcd idle CPU, %d programs, over %v", n, c.dur.Round(time.Second)), "< 0.05 % of a core",
		fmt.Sprintf("%.4f %% (all threads %.1f ms; leader thread schedstat %.1f ms; utime+stime %d ms; VmRSS after %.1f MB)",
			c.pct(), ms(c.all), ms(c.leader), c.statTicks*10, float64(kb)/1024),
		ptr(float64(c.all) < goal), fmt.Sprintf("e2e -cpu PID -dur %v (Σ /proc/PID/task/*/schedstat field 1)", *fIdle))
	return nil
}

func (w *world) benchReread(n int) error {
	pid, ok := w.daemonPID()
	if !ok {
		return errors.New("usrsvcd not running")
	}
	ack := filepath.Join(w.dir, "state", "usrsvcd.reload.json")
	var ds []time.Duration
	for i := 0; i < *fRepeat; i++ {
		g0 := readGen(ack)
		t0 := time.Now()
		if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
			return err
		}
		for readGen(ack) <= g0 {
			if time.Since(t0) > 10*time.Second {
				return fmt.Errorf("no reread acknowledgement after 10 s (generation %d)", g0)
			}
			time.Sleep(200 * time.Microsecond)
		}
		ds = append(ds, time.Since(t0))
		time.Sleep(100 * time.Millisecond)
	}
	addRow(fmt.Sprintf("SIGUSR1 → acknowledged reread, %d programs (median of %d)", n, len(ds)), "< 50 ms",
		fmt.Sprintf("median %.1f ms (min %.1f, max %.1f)", ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds))),
		ptr(median(ds) < 50*time.Millisecond), "kill -USR1 PID; poll state/usrsvcd.reload.json generation every 0.2 ms")
	ds = ds[:0]
	for i := 0; i < *fRepeat; i++ {
		d, err := w.runTimed("usrsvcd", "--config", w.cfg200, "reread")
		if err != nil {
			return err
		}
		ds = append(ds, d)
	}
	addRow(fmt.Sprintf("`usrsvcd reread` command, %d programs (median of %d)", n, len(ds)), "—",
		fmt.Sprintf("median %.1f ms (min %.1f, max %.1f)", ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds))),
		nil, "usrsvcd --config usrsvc.cfg reread")
	return nil
}

func (w *world) benchDaemonKill(n int) error {
	pid, ok := w.daemonPID()
	if !ok {
		return errors.New("usrsvcd not running")
	}
	before := w.running(w.titles)
	if len(before) != n {
		return fmt.Errorf("%d of %d programs running before the kill", len(before), n)
	}
	logPath := filepath.Join(w.dir, "usrsvcd.log")
	st, _ := os.Stat(logPath)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	if !waitGone(pid, 5*time.Second) {
		return errors.New("killed usrsvcd still there after 5 s")
	}
	d, err := w.runTimed("usrsvcd", "--config", w.cfg200, "start")
	if err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // > success_seconds: a restart would show
	after := w.running(w.titles)
	restarted, dup, missing := 0, 0, 0
	for _, t := range w.titles {
		b, a := before[t], after[t]
		switch {
		case len(a) == 0:
			missing++
		case len(a) > 1:
			dup++
			restarted++
		case a[0].pid != b[0].pid || a[0].start != b[0].start:
			restarted++
		}
	}
	// What the new daemon logged since the kill.
	started := 0
	if f, err := os.Open(logPath); err == nil {
		if st != nil {
			_, _ = f.Seek(st.Size(), 0)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if bytes.Contains(sc.Bytes(), []byte("event=started")) || bytes.Contains(sc.Bytes(), []byte("event=restarting")) {
				started++
			}
		}
		f.Close()
	}
	addRow(fmt.Sprintf("usrsvcd kill -9 → `usrsvcd start`, %d programs", n), "0 restarted, pids unchanged",
		fmt.Sprintf("%d restarted, %d duplicated, %d missing, %d/%d pids unchanged; %d started/restarting log lines; start took %.0f ms",
			restarted, dup, missing, n-restarted-missing, n, started, ms(d)),
		ptr(restarted == 0 && missing == 0 && started == 0), "kill -9 $(cat usrsvcd.pid); usrsvcd --config usrsvc.cfg start")
	return nil
}

func (w *world) benchKill(subreaper bool) error {
	var sub *exec.Cmd
	where := "pid 1 (`usrsvcd start`)"
	cmdDesc := "usrsvcd --config usrsvc1.cfg start; e2e -observe TITLE -kills 10"
	if subreaper {
		where = "a prompt subreaper (`e2e -subreaper -- usrsvcd --foreground start`)"
		cmdDesc = "e2e -subreaper -- usrsvcd --config usrsvc1.cfg --foreground start; e2e -observe TITLE -kills 10"
		self, err := os.Executable()
		if err != nil {
			return err
		}
		sub = exec.Command(self, "-subreaper", "--", filepath.Join(w.bin, "usrsvcd"), "--config", w.cfg1, "--foreground", "start")
		sub.Env = append(os.Environ(), "HOME="+w.dir)
		sub.Stdout, sub.Stderr = w.log, w.log
		if err := sub.Start(); err != nil {
			return err
		}
		done := make(chan struct{})
		go func() { _ = sub.Wait(); close(done) }()
		defer func() {
			_ = w.cmd("usrsvcd", "--config", w.cfg1, "stop").Run()
			_ = w.cmd("usrsvc", "--config", w.cfg1, "-q", "stop", "all").Run()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				fmt.Fprintln(os.Stderr, "e2e: subreaper still running after 10 s; killing it")
				_ = sub.Process.Kill()
				<-done
			}
		}()
	} else {
		if _, err := w.runTimed("usrsvcd", "--config", w.cfg1, "start"); err != nil {
			return err
		}
		// The program is left running (the teardown stops it): a manual stop
		// here would keep the next daemon from restarting it.
		defer func() { _ = w.cmd("usrsvcd", "--config", w.cfg1, "stop").Run() }()
	}
	if _, err := w.waitDaemon(10 * time.Second); err != nil {
		return err
	}
	// The daemon adopts or autostarts it; start it by hand if it does neither
	// within 5 s (e.g. a manual-stop record).
	deadline := time.Now().Add(5 * time.Second)
	for len(w.running([]string{w.killTitle})) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(w.running([]string{w.killTitle})) == 0 {
		if _, err := w.runTimed("usrsvc", "--config", w.cfg1, "start", "all"); err != nil {
			return err
		}
	}
	o, err := observeKills(w.killTitle, *fKills)
	if err != nil {
		return err
	}
	parent := "?"
	if len(o.ppids) > 0 {
		pp := o.ppids[len(o.ppids)-1]
		parent = strconv.Itoa(pp)
		switch {
		case sub != nil && pp == sub.Process.Pid:
			parent += " (the subreaper)"
		case pp == 1:
			parent += " (init)"
		}
	}
	reap := "killed pid never reaped within the wait"
	if len(o.reap) > 0 {
		reap = fmt.Sprintf("killed pid gone from /proc after median %.1f ms (max %.1f; %d not within the wait)", ms(median(o.reap)), ms(slices.Max(o.reap)), o.reapTimeouts)
	}
	addRow(fmt.Sprintf("kill -9 of a managed program → new process, under %s (median of %d)", where, len(o.lat)), "< 50 ms",
		fmt.Sprintf("median %.1f ms (min %.1f, max %.1f); parent of the new process: %s; %s", ms(median(o.lat)), ms(slices.Min(o.lat)), ms(slices.Max(o.lat)), parent, reap),
		ptr(median(o.lat) < 50*time.Millisecond), cmdDesc)
	return nil
}
