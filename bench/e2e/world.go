package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/proc"
)

type world struct {
	dir, bin, run string
	cfg200        string
	cfg10, cfg1   string
	titles        []string // of the n programs
	killTitle     string
	log           *os.File
	fl            floors
}

// settle is how long usrsvcd is left alone after its start before its
// memory is read.
const settle = 5 * time.Second

// floors are this machine's costs measured in the same run, that the
// figures are divided by.
type floors struct {
	spawn    time.Duration // a shell starting the n programs bare, until the last exec'd
	spawnCPU time.Duration // its CPU per program (shell + program), 0 when unmeasured
	spawn1   time.Duration // a shell starting 1 program (median of 10)
	version  time.Duration // usrsvc --version (median)
	ps       time.Duration // ps -u USER -o pid=,args= over the n running programs (median)
}

type row struct{ measure, goal, result, floor, pass, cmd string }

var rows []row

func addRow(measure, goal, result, floor string, pass *bool, cmd string) {
	p := "n/a"
	if pass != nil {
		p = map[bool]string{true: "PASS", false: "**MISS**"}[*pass]
	}
	if floor == "" {
		floor = "—"
	}
	rows = append(rows, row{measure, goal, result, floor, p, cmd})
	fmt.Fprintf(os.Stderr, "e2e: %s: %s (%s; %s)\n", measure, result, floor, p)
}

// times formats a/b as a ratio: "1.42×".
func times(a, b time.Duration) string {
	if b <= 0 {
		return "?×"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

func (w *world) benchFloors(n int) error {
	var titles []string
	for i := 1; i <= n; i++ {
		titles = append(titles, fmt.Sprintf("/bin/sleep 86402.%s%03d", w.run, i))
	}
	r, err := spawnFloor(titles, true)
	if err != nil {
		return err
	}
	w.fl.spawn = r.wall
	cpu := "CPU n/a (" + r.cpuError + ")"
	if r.cpuError == "" {
		w.fl.spawnCPU = r.cpu / time.Duration(n)
		cpu = fmt.Sprintf("CPU %.0f µs a program (shell + program; the program's own %.0f µs)", us(w.fl.spawnCPU), us(r.progCPU)/float64(n))
	}
	addRow(fmt.Sprintf("floor: a shell starting the same %d programs bare", n), "—",
		fmt.Sprintf("%.1f ms until the last exec'd (%.0f µs a program); %s", ms(r.wall), us(r.wall)/float64(n), cpu), "", nil,
		"e2e -spawn FILE -cg (bash: `$t </dev/null >/dev/null 2>&1 &` per line)")
	var ones []time.Duration
	for i := 0; i < 10; i++ {
		r, err := spawnFloor(titles[:1], false)
		if err != nil {
			return err
		}
		ones = append(ones, r.wall)
	}
	w.fl.spawn1 = median(ones)
	addRow("floor: a shell starting 1 program bare (median of 10)", "—",
		fmt.Sprintf("median %.1f ms (min %.1f, max %.1f)", ms(w.fl.spawn1), ms(slices.Min(ones)), ms(slices.Max(ones))), "", nil, "e2e -spawn FILE -repeat 10")
	t, err := timeCmd(*fRepeat, false, "", filepath.Join(w.bin, "usrsvc"), "--version")
	if err != nil {
		return err
	}
	w.fl.version = median(t.wall)
	addRow(fmt.Sprintf("floor: a bare `usrsvc --version` (median of %d)", len(t.wall)), "—",
		fmt.Sprintf("median %.1f ms (min %.1f, max %.1f)", ms(w.fl.version), ms(slices.Min(t.wall)), ms(slices.Max(t.wall))), "", nil, "usrsvc --version")
	return nil
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
	// Commands run through timeCmd (the CPU-measured start, ps) see the
	// world as their HOME too.
	os.Setenv("HOME", w.dir)
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
			rows = append(rows, row{name, "", "ERROR: " + err.Error(), "—", "**FAIL**", ""})
			if name != "kill1" && name != "kill1sub" {
				failed = true
			}
		}
	}
	n := *fN
	cfg := w.cfg200
	step("floors", func() error { return w.benchFloors(n) })
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

	fmt.Printf("| Measure | Goal | Result | ÷ floor (this run) | | Command |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", r.measure, r.goal, r.result, r.floor, r.pass, r.cmd)
	}
	if failed {
		return 1
	}
	return 0
}

func (w *world) benchStart(cfg string, n int) error {
	var starts, stops []time.Duration
	var cpu timing
	tok := "sleep 86400." + w.run
	for r := 0; r < 3; r++ {
		if r > 0 {
			d, err := w.runTimed("usrsvc", "--config", cfg, "-q", "-P", "stop", "all")
			if err != nil {
				return err
			}
			stops = append(stops, d)
		}
		var d time.Duration
		var err error
		if r == 0 {
			// The first start also measures the CPU of everything it ran.
			cpu, err = timeCmd(1, true, tok, filepath.Join(w.bin, "usrsvc"), "--config", cfg, "-q", "-P", "start", "all")
			d = cpu.wall[0]
		} else {
			d, err = w.runTimed("usrsvc", "--config", cfg, "-q", "-P", "start", "all")
		}
		if err != nil {
			return err
		}
		starts = append(starts, d)
		if got := len(w.running(w.titles)); got != n {
			return fmt.Errorf("after start all: %d of %d running", got, n)
		}
	}
	med := median(starts)
	goal := time.Second + w.fl.spawn*3/2
	floor := "—"
	if w.fl.spawn > 0 {
		floor = fmt.Sprintf("(start − 1 s) = %s the bare spawn of %d (%.0f ms)", times(med-time.Second, w.fl.spawn), n, ms(w.fl.spawn))
	}
	addRow(fmt.Sprintf("`usrsvc -P start all`, %d programs, success_seconds = 1 (3 runs)", n), fmt.Sprintf("≤ 1 s + 1.5× bare spawn (%.0f ms)", ms(goal)),
		fmt.Sprintf("median %.0f ms (min %.0f, max %.0f)", ms(med), ms(slices.Min(starts)), ms(slices.Max(starts))),
		floor, ptrIf(w.fl.spawn > 0, med <= goal), "usrsvc --config usrsvc.cfg -q -P start all")
	if len(cpu.cpu) > 0 && w.fl.spawnCPU > 0 {
		net := (cpu.cpu[0] - cpu.progCPU) / time.Duration(n)
		addRow(fmt.Sprintf("CPU per start (usrsvc + launcher, the program's own excluded), %d programs", n), "≤ 2× a bare spawn's CPU",
			fmt.Sprintf("%.0f µs a program (%.0f µs with the program's own)", us(net), us(cpu.cpu[0])/float64(n)),
			fmt.Sprintf("%s a bare spawn's CPU (%.0f µs: shell + program)", times(net, w.fl.spawnCPU), us(w.fl.spawnCPU)),
			ptr(net <= 2*w.fl.spawnCPU), "e2e -time 1 -cg -progs TOKEN -- usrsvc … -P start all (a cgroup's CPU minus the programs' schedstat)")
	}
	addRow(fmt.Sprintf("`usrsvc -P stop all`, %d programs (2 runs)", n), "—",
		fmt.Sprintf("median %.0f ms (min %.0f, max %.0f)", ms(median(stops)), ms(slices.Min(stops)), ms(slices.Max(stops))),
		"", nil, "usrsvc --config usrsvc.cfg -q -P stop all")
	return nil
}

// ptrIf is ptr(v) when known, else nil (no verdict).
func ptrIf(known, v bool) *bool {
	if !known {
		return nil
	}
	return &v
}

func (w *world) benchStatus(cfg string, n int) error {
	t, err := timeCmd(*fRepeat, false, "", "ps", "-u", strconv.Itoa(os.Getuid()), "-o", "pid=,args=")
	if err != nil {
		return err
	}
	w.fl.ps = median(t.wall)
	addRow(fmt.Sprintf("floor: `ps -u USER -o pid=,args=` over the %d running programs (median of %d)", n, len(t.wall)), "—",
		fmt.Sprintf("median %.1f ms (min %.1f, max %.1f)", ms(w.fl.ps), ms(slices.Min(t.wall)), ms(slices.Max(t.wall))), "", nil, "ps -u USER -o pid=,args=")
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
		med := median(ds)
		floor := fmt.Sprintf("%s `usrsvc --version` (%.1f ms); %s ps (%.1f ms); %.0f µs a program", times(med, w.fl.version), ms(w.fl.version), times(med, w.fl.ps), ms(w.fl.ps), us(med)/float64(n))
		addRow(fmt.Sprintf("%s, %d running (median of %d)", name, n, len(ds)), "≤ 3× `usrsvc --version`",
			fmt.Sprintf("median %.1f ms (min %.1f, max %.1f)", ms(med), ms(slices.Min(ds)), ms(slices.Max(ds))),
			floor, ptrIf(w.fl.version > 0, med <= 3*w.fl.version), "usrsvc --config usrsvc.cfg "+strings.Join(args[2:], " ")+" >/dev/null")
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
			fmt.Sprintf("%.0f ms", ms(d)), fmt.Sprintf("%s `usrsvc --version`", times(d, w.fl.version)), nil, "usrsvcd --config "+filepath.Base(c.cfg)+" start")
		time.Sleep(settle)
		m, err := readMemory(pid)
		if err != nil {
			return err
		}
		// Goals on RssAnon (what usrsvcd itself holds; PSS and VmRSS
		// beside it): under 4 MB with 10 programs, 8 MB with 200, and
		// 4 MB + 20 KB a program in general.
		goalKB := int64(4*1024 + 20*c.n)
		if c.n >= 200 {
			goalKB = max(goalKB, 8*1024)
		}
		addRow(fmt.Sprintf("usrsvcd RssAnon, %d programs supervised (%v after start)", c.n, settle), fmt.Sprintf("≤ %.1f MB", float64(goalKB)/1024),
			m.String(), "", ptr(m.anon <= goalKB), "e2e -mem $(cat usrsvcd.pid): RssAnon of /proc/PID/status, Pss of /proc/PID/smaps_rollup")
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
	time.Sleep(settle)
	c, err := measureCPU(pid, *fIdle)
	if err != nil {
		return err
	}
	mem, _ := readMemory(pid)
	goal := float64(c.dur) * 0.0005
	addRow(fmt.Sprintf("usrsvcd idle CPU, %d programs, over %v", n, c.dur.Round(time.Second)), "< 0.05 % of a core",
		fmt.Sprintf("%.4f %% (all threads %.1f ms; leader thread schedstat %.1f ms; utime+stime %d ms; %d wake-ups of %d threads; after: %s)",
			c.pct(), ms(c.all), ms(c.leader), c.statTicks*10, c.switches, c.threads, mem),
		"", ptr(float64(c.all) < goal), fmt.Sprintf("e2e -cpu PID -dur %v (Σ /proc/PID/task/*/schedstat field 1)", *fIdle))
	return nil
}

func (w *world) benchReread(n int) error {
	pid, ok := w.daemonPID()
	if !ok {
		return errors.New("usrsvcd not running")
	}
	ack := filepath.Join(w.dir, "state", "usrsvcd.reload.json")
	ds, err := rereads(pid, ack, *fRepeat)
	if err != nil {
		return err
	}
	addRow(fmt.Sprintf("SIGUSR1 → acknowledged reread, %d programs (median of %d)", n, len(ds)), "< 50 ms",
		fmt.Sprintf("median %.1f ms (min %.1f, max %.1f)", ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds))),
		fmt.Sprintf("%.0f µs a program", us(median(ds))/float64(n)),
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
		fmt.Sprintf("%s `usrsvc --version`", times(median(ds), w.fl.version)), nil, "usrsvcd --config usrsvc.cfg reread")
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
		"", ptr(restarted == 0 && missing == 0 && started == 0), "kill -9 $(cat usrsvcd.pid); usrsvcd --config usrsvc.cfg start")
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
	o, err := observeKills(w.killTitle, *fKills, func() error {
		return w.cmd("usrsvc", "--config", w.cfg1, "-q", "start", "all").Run()
	})
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
		fmt.Sprintf("%s a bare spawn of 1 (%.1f ms)", times(median(o.lat), w.fl.spawn1), ms(w.fl.spawn1)), ptr(median(o.lat) < 50*time.Millisecond), cmdDesc)
	return nil
}
