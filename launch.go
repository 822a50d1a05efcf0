package usrsvc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// launcherEnv marks a process as a usrsvc launcher. The package's init
// recognises it before main runs, so any binary that imports usrsvc can be
// re-executed as the launcher and embedders need do nothing.
const launcherEnv = "USRSVC_LAUNCHER"

// Fds the launcher receives from its caller.
const (
	launcherJobFd    = 3 // read end of the job pipe (JSON launchJob)
	launcherResultFd = 4 // write end of the result pipe (JSON launchResult)
	launcherLockFd   = 5 // the program's lock file, held until the program is recorded
)

// environment variables that never reach a program.
var strippedEnv = []string{launcherEnv, "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS",
	"LISTEN_FDNAMES", "WATCHDOG_PID", "WATCHDOG_USEC"}

// caughtSignals are taken by the launcher before it starts the program, so
// that signals its caller ignored are back to their default disposition in
// the program (exec resets caught signals, not ignored ones).
var caughtSignals = []os.Signal{syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM,
	syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE}

func init() {
	if os.Getenv(launcherEnv) == "1" {
		// syscall.Exit: nothing to flush, and no exit hooks (the race
		// detector's pause would delay every start by a second in tests).
		syscall.Exit(runLauncher())
	}
}

// launchJob is what the caller sends the launcher over the job pipe.
type launchJob struct {
	Program  string
	Path     string   // resolved executable; "" when the lookup failed (see LookupErr)
	Argv     []string // argv of the program (or of its shell)
	Env      []string
	Dir      string
	Stdout   string
	Stderr   string
	Window   time.Duration
	Pidfile  string // written by the launcher on success when AutoPid
	AutoPid  bool
	TitleRE  string   // proctitle_re
	ShellArg []string // with useshell: the shell's argv, never a match
	Shell    bool
	// TermToKill is the SIGTERM → SIGKILL grace used to clean up a tree
	// in which nothing matched.
	TermToKill time.Duration
}

// launchResult is what the launcher reports back.
type launchResult struct {
	Code       Code      // CodeSuccess, CodeProgramFailedToLaunch, CodeProgramExited, CodeGeneralFailure
	Message    string    // why it failed
	PID        int       // the matched process
	StartTicks uint64    // its start time
	Started    time.Time // its start time, wall clock
	Executable string    // its /proc/PID/exe
	Title      string    // its title
	Args       []string  // its argv
	Exit       *ExitStatus
	Stderr     []string // lines the stderr file gained since the launch (on failure)
	Titles     []string // titles of the running descendants when nothing matched
	Warning    string   // e.g. several matching roots
}

// launch starts pc detached through a launcher and waits for the result of
// its success window. lock is the program's lock file: the launcher inherits
// it and holds it until the program is recorded, even if the caller dies.
func (m *Manager) launch(ctx context.Context, pc *ProgramConfig, lock *os.File) (*launchResult, error) {
	job, err := m.buildJob(pc)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding launch job: %v", ErrFailed, err)
	}
	jobR, jobW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: pipe: %v", ErrFailed, err)
	}
	defer jobR.Close()
	defer jobW.Close()
	resR, resW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: pipe: %v", ErrFailed, err)
	}
	defer resR.Close()
	defer resW.Close()

	exe := m.opts.LauncherPath
	if exe == "" {
		exe = "/proc/self/exe"
	}
	cmd := exec.Command(exe)
	cmd.Args = []string{"usrsvc-launcher"}
	cmd.Env = []string{launcherEnv + "=1"}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{jobR, resW, lock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: starting the launcher %s: %v", ErrLaunch, exe, err)
	}
	jobR.Close()
	resW.Close()
	go func() {
		jobW.Write(payload)
		jobW.Close()
	}()
	type readResult struct {
		res launchResult
		err error
	}
	ch := make(chan readResult, 1)
	go func() {
		var rr readResult
		data, err := io.ReadAll(resR)
		if err != nil {
			rr.err = err
		} else if len(data) == 0 {
			rr.err = errors.New("the launcher exited without reporting")
		} else {
			rr.err = json.Unmarshal(data, &rr.res)
		}
		ch <- rr
		cmd.Wait() // reap the launcher once it has exited
	}()
	select {
	case rr := <-ch:
		if rr.err != nil {
			return nil, fmt.Errorf("%w: launcher: %v", ErrFailed, rr.err)
		}
		return &rr.res, nil
	case <-ctx.Done():
		// The launcher goes on by itself: it holds the lock and records the
		// program, so abandoning it leaves nothing half-done.
		return nil, fmt.Errorf("%w: abandoned while the launcher runs: %v", ErrFailed, ctx.Err())
	}
}

// programEnv computes a program's environment: the caller's (inherit_env)
// without usrsvc's and systemd's own variables, then [[Env]] over it. A new
// slice each call: nothing leaks between programs.
func programEnv(pc *ProgramConfig, base []string) []string {
	vals := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	if pc.InheritEnv {
		for _, kv := range base {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			set(k, v)
		}
	}
	for _, e := range pc.Env {
		set(e.Key, e.Value)
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		if isStripped(k) {
			continue
		}
		env = append(env, k+"="+vals[k])
	}
	return env
}

func isStripped(k string) bool {
	for _, s := range strippedEnv {
		if k == s {
			return true
		}
	}
	return false
}

func envLookup(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// shellPath is the shell of useshell programs: bash as the original, sh where bash is missing.
func shellPath() string {
	if _, err := os.Stat("/bin/bash"); err == nil {
		return "/bin/bash"
	}
	return "/bin/sh"
}

// lookPath finds file in the PATH of env, as execvp would; a relative path
// with a slash is relative to dir, the program's working directory.
func lookPath(file string, env []string, dir string) (string, error) {
	if strings.Contains(file, "/") {
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		if err := checkExecutable(file); err != nil {
			return "", err
		}
		return file, nil
	}
	path, _ := envLookup(env, "PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	var firstErr error
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = dir // an empty PATH entry is the working directory
		} else if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, file)
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, os.ErrNotExist) && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", fmt.Errorf("executable file not found in the program's PATH: %s (PATH=%s)", file, path)
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no such file or directory: %s: %w", p, os.ErrNotExist)
		}
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("is a directory: %s", p)
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return fmt.Errorf("permission denied: %s is not executable", p)
	}
	return nil
}

// checkWritableDir reports, as ErrPermission, a directory where file cannot
// be created, or a file that exists but cannot be written.
func checkWritable(file, what string) error {
	dir := filepath.Dir(file)
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s directory %s does not exist (create it: mkdir -p %s)", ErrPermission, what, dir, dir)
		}
		return fmt.Errorf("%w: %s directory %s: %v", ErrPermission, what, dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s directory %s is not a directory", ErrPermission, what, dir)
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		if _, serr := os.Stat(file); serr != nil || what == "pidfile" {
			return fmt.Errorf("%w: cannot write in %s directory %s (%v)", ErrPermission, what, dir, err)
		}
	}
	if _, err := os.Stat(file); err == nil {
		if err := unix.Access(file, unix.W_OK); err != nil {
			return fmt.Errorf("%w: cannot write %s %s (%v)", ErrPermission, what, file, err)
		}
	}
	return nil
}

// buildJob checks what can be checked before launching and computes the job.
func (m *Manager) buildJob(pc *ProgramConfig) (*launchJob, error) {
	if pc.AutoPid {
		if err := checkWritable(pc.Pidfile, "pidfile"); err != nil {
			return nil, err
		}
	}
	if err := checkWritable(pc.Stdout, "stdout"); err != nil {
		return nil, err
	}
	if pc.Stderr != pc.Stdout {
		if err := checkWritable(pc.Stderr, "stderr"); err != nil {
			return nil, err
		}
	}
	home, err := HomeDir()
	if err != nil {
		return nil, fmt.Errorf("%w: cannot find the home directory: %v", ErrFailed, err)
	}
	env := programEnv(pc, m.environ())
	job := &launchJob{
		Program:    pc.Name,
		Env:        env,
		Dir:        home,
		Stdout:     pc.Stdout,
		Stderr:     pc.Stderr,
		Window:     pc.SuccessSeconds,
		TermToKill: pc.TermToKill,
		Pidfile:    pc.Pidfile,
		AutoPid:    pc.AutoPid,
		TitleRE:    pc.TitleRegexp().String(),
		Shell:      pc.UseShell,
	}
	if pc.UseShell {
		sh := shellPath()
		job.Argv = []string{sh, "-c", pc.Command}
		job.ShellArg = job.Argv
		job.Path = sh
	} else {
		if len(pc.Args) == 0 {
			return nil, fmt.Errorf("%w: empty command", ErrLaunch)
		}
		p, err := lookPath(pc.Args[0], env, home)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrLaunch, err)
		}
		job.Path = p
		job.Argv = pc.Args
	}
	return job, nil
}

// runLauncher is the launcher's main: it starts the job's program in a new
// session, watches its tree for the success window, records it, reports to
// the caller and exits, leaving the program to init.
func runLauncher() int {
	res := os.NewFile(launcherResultFd, "result")
	jobF := os.NewFile(launcherJobFd, "job")
	if res == nil || jobF == nil {
		fmt.Fprintln(os.Stderr, "usrsvc launcher: started without its pipes")
		return 2
	}
	// No fd but stdio reaches the program: ours, and any our caller's
	// caller left without close-on-exec.
	closeOnExecFrom(launcherJobFd)
	report := func(r *launchResult) int {
		data, _ := json.Marshal(r)
		res.Write(data)
		res.Close()
		return 0
	}
	var job launchJob
	data, err := io.ReadAll(jobF)
	jobF.Close()
	if err == nil {
		err = json.Unmarshal(data, &job)
	}
	if err != nil {
		return report(&launchResult{Code: CodeUnknownFailure, Message: "reading the launch job: " + err.Error()})
	}
	return report(job.run())
}

func (job *launchJob) run() *launchResult {
	// Catch the signals the caller may have ignored: exec resets caught
	// signals to their default disposition, not ignored ones.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, caughtSignals...)
	chld := make(chan os.Signal, 16)
	signal.Notify(chld, syscall.SIGCHLD)
	// Orphaned descendants come back to us during the window, so we can reap
	// them and see fork-and-exit daemons.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

	re, err := regexp.Compile(job.TitleRE)
	if err != nil {
		return &launchResult{Code: CodeInvalidConfig, Message: "proctitle_re: " + err.Error()}
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return &launchResult{Code: CodeUnknownFailure, Message: err.Error()}
	}
	out, err := openLog(job.Stdout)
	if err != nil {
		return &launchResult{Code: CodeInsufficientPermissions, Message: err.Error()}
	}
	errf := out
	if job.Stderr != job.Stdout {
		if errf, err = openLog(job.Stderr); err != nil {
			return &launchResult{Code: CodeInsufficientPermissions, Message: err.Error()}
		}
	}
	var errOffset int64
	if st, err := errf.Stat(); err == nil {
		errOffset = st.Size()
	}
	launched := time.Now()
	pid, err := syscall.ForkExec(job.Path, job.Argv, &syscall.ProcAttr{
		Dir:   job.Dir,
		Env:   job.Env,
		Files: []uintptr{devnull.Fd(), out.Fd(), errf.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	devnull.Close()
	out.Close()
	errf.Close()
	if err != nil {
		return &launchResult{Code: CodeProgramFailedToLaunch, Message: execErrorMessage(err, job.Path)}
	}

	// The success window: reap whatever comes back to us; stop early when
	// the whole tree is gone.
	var exit *ExitStatus
	deadline := time.NewTimer(job.Window)
	defer deadline.Stop()
	treeGone := false
wait:
	for {
		for {
			var ws syscall.WaitStatus
			wpid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err == syscall.ECHILD {
				treeGone = true
				break wait
			}
			if err != nil || wpid <= 0 {
				break
			}
			if wpid == pid {
				exit = exitStatusOf(ws, time.Now())
			}
		}
		select {
		case <-chld:
		case <-deadline.C:
			break wait
		}
	}
	elapsed := time.Since(launched).Round(time.Millisecond)
	stderrLines := func() []string { return tailSince(job.Stderr, errOffset, 20) }

	if treeGone {
		r := &launchResult{Code: CodeProgramExited, Exit: exit, Stderr: stderrLines()}
		if job.Shell && exit != nil && exit.Exited && (exit.Status == 126 || exit.Status == 127) {
			r.Code = CodeProgramFailedToLaunch
			r.Message = fmt.Sprintf("the shell could not run the command (exit status %d: %s)", exit.Status,
				map[int]string{126: "permission denied or not executable", 127: "command not found"}[exit.Status])
			return r
		}
		r.Message = fmt.Sprintf("%s after %v, before success_seconds (%v)", describeExit(exit), elapsed, job.Window)
		return r
	}

	// End of the window: the live descendants of this launcher, read by
	// following the children files from it (its cost is the tree's, not
	// the machine's: 200 parallel starts do not each read every process).
	self := os.Getpid()
	snap, err := proc.Default().Tree(self, os.Getuid())
	if err != nil {
		return &launchResult{Code: CodeUnknownFailure, Message: "reading /proc: " + err.Error()}
	}
	var tree []*proc.Process
	for _, p := range snap.Descendants(self) {
		if !p.Zombie() {
			tree = append(tree, p)
		}
	}
	var matches []*proc.Process
	for _, p := range tree {
		if p.UID == os.Getuid() && re.MatchString(p.Title) && !sameArgs(p.Args, job.ShellArg) {
			matches = append(matches, p)
		}
	}
	chosen, others := pickRoot(snap, matches)
	if chosen == nil {
		r := &launchResult{Code: CodeGeneralFailure, Exit: exit, Stderr: stderrLines()}
		for _, p := range tree {
			r.Titles = append(r.Titles, fmt.Sprintf("[%d] %s", p.PID, p.Title))
		}
		if len(tree) == 0 {
			r.Code = CodeProgramExited
			r.Message = fmt.Sprintf("%s before success_seconds (%v)", describeExit(exit), job.Window)
			return r
		}
		// What runs under another title would be launched again by the next
		// start and pile up: stop what this start launched.
		stopTree(tree, job.TermToKill)
		r.Message = fmt.Sprintf("running but nothing matches proctitle_re %q; processes seen (now stopped): %s",
			job.TitleRE, strings.Join(r.Titles, "; "))
		return r
	}
	exe, _ := proc.Default().Exe(chosen.PID)
	r := &launchResult{Code: CodeSuccess, PID: chosen.PID, StartTicks: chosen.StartTicks,
		Started: chosen.Started, Executable: exe, Title: chosen.Title, Args: chosen.Args}
	if len(others) > 0 {
		r.Warning = fmt.Sprintf("several processes match; recorded the oldest [%d], also matching: %s",
			chosen.PID, pidList(others))
	}
	if job.AutoPid {
		if err := writePidfile(job.Pidfile, chosen.PID); err != nil {
			r.Warning = strings.TrimSpace(r.Warning + " cannot write pidfile: " + err.Error())
		}
	}
	return r
}

// closeOnExecFrom marks every fd >= from close-on-exec.
func closeOnExecFrom(from int) {
	if unix.CloseRange(uint(from), ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		for fd := from; fd < 1024; fd++ {
			syscall.CloseOnExec(fd)
		}
		return
	}
	for _, e := range entries {
		var fd int
		if _, err := fmt.Sscanf(e.Name(), "%d", &fd); err == nil && fd >= from {
			syscall.CloseOnExec(fd)
		}
	}
}

// stopTree stops the processes a failed start launched: SIGTERM, then
// SIGKILL after grace (at most 10 s), reaping what comes back to us. A pid
// is signalled only while it still has the start time seen in the snapshot.
func stopTree(tree []*proc.Process, grace time.Duration) {
	if grace > 10*time.Second {
		grace = 10 * time.Second
	}
	fs := proc.Default()
	alive := func(p *proc.Process) bool {
		q, err := fs.Stat(p.PID)
		return err == nil && !q.Zombie() && q.StartTicks == p.StartTicks
	}
	signal := func(sig syscall.Signal) (left int) {
		for _, p := range tree {
			if alive(p) {
				left++
				if sig != 0 {
					syscall.Kill(p.PID, sig)
				}
			}
		}
		return left
	}
	reap := func() {
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				return
			}
		}
	}
	signal(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		reap()
		if signal(0) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	signal(syscall.SIGKILL)
	time.Sleep(10 * time.Millisecond)
	reap()
}

func openLog(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
}

func execErrorMessage(err error, path string) string {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return "no such file or directory: " + path
	case errors.Is(err, syscall.EACCES):
		return "permission denied: " + path
	case errors.Is(err, syscall.ENOEXEC):
		return "exec format error (not a binary, or a script without #!): " + path
	}
	return fmt.Sprintf("exec %s: %v", path, err)
}

func exitStatusOf(ws syscall.WaitStatus, t time.Time) *ExitStatus {
	e := &ExitStatus{Time: t, Known: true}
	if ws.Signaled() {
		e.Signal = int(ws.Signal())
	} else {
		e.Exited = true
		e.Status = ws.ExitStatus()
	}
	return e
}

// describeExit says how a process ended, in words.
func describeExit(e *ExitStatus) string {
	switch {
	case e == nil || !e.Known:
		return "exited"
	case e.Exited:
		return fmt.Sprintf("exited with status %d", e.Status)
	default:
		return fmt.Sprintf("killed by signal %d (%s)", e.Signal, unix.SignalName(syscall.Signal(e.Signal)))
	}
}

func sameArgs(a, b []string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// pickRoot chooses among matching processes: roots of the matching tree
// (a match whose parent is not a match) first, then the oldest.
func pickRoot(s *proc.Snapshot, matches []*proc.Process) (chosen *proc.Process, otherRoots []*proc.Process) {
	isMatch := map[int]bool{}
	for _, p := range matches {
		isMatch[p.PID] = true
	}
	var roots []*proc.Process
	for _, p := range matches {
		if !isMatch[p.PPID] {
			roots = append(roots, p)
		}
	}
	if len(roots) == 0 {
		return nil, nil
	}
	sort.Slice(roots, func(i, j int) bool {
		if roots[i].StartTicks != roots[j].StartTicks {
			return roots[i].StartTicks < roots[j].StartTicks
		}
		return roots[i].PID < roots[j].PID
	})
	return roots[0], roots[1:]
}

func pidList(ps []*proc.Process) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "[%d] %s", p.PID, p.Title)
	}
	return b.String()
}

// tailSince returns up to n last lines that path gained after offset.
func tailSince(path string, offset int64, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	const max = 16 << 10
	st, err := f.Stat()
	if err != nil || st.Size() <= offset {
		return nil
	}
	start := offset
	if st.Size()-start > max {
		start = st.Size() - max
	}
	buf := make([]byte, st.Size()-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return nil
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(buf))
	sc.Buffer(make([]byte, 0, 4096), max)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// writePidfile writes pid atomically (temp + rename), mode 0600.
func writePidfile(path string, pid int) error {
	return writeFileAtomic(path, []byte(fmt.Sprintf("%d\n", pid)), 0o600)
}

// writeFileAtomic writes data to a temp file beside path and renames it over path.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
