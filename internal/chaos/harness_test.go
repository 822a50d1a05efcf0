package chaos

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestMain(m *testing.M) {
	testproc.Main()
	code := m.Run()
	for i := range builds {
		if builds[i].dir != "" {
			os.RemoveAll(builds[i].dir)
		}
	}
	os.Exit(code)
}

// build is one build of the two binaries.
type build struct {
	once sync.Once
	dir  string
	err  error
}

// builds: [0] plain, [1] with the race detector.
var builds [2]build

// binaries returns a directory holding usrsvc and usrsvcd built from this
// module (once per test binary). With race, they are built with the race
// detector when the tests run under it, so the daemon's own races show up.
// The directory is readable by every user (a test may run the binaries as
// another uid).
func binaries(t testing.TB, race bool) string {
	t.Helper()
	race = race && raceEnabled
	b := &builds[0]
	if race {
		b = &builds[1]
	}
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "usrsvc-chaos-bin-")
		if b.err != nil {
			return
		}
		if b.err = os.Chmod(b.dir, 0o755); b.err != nil {
			return
		}
		gobin, err := exec.LookPath("go")
		if err != nil {
			b.err = fmt.Errorf("the go command is needed to build the binaries: %v", err)
			return
		}
		args := []string{"build", "-o", b.dir + "/"}
		if race {
			args = append(args, "-race")
		}
		args = append(args, "github.com/usrsvc/usrsvc/cmd/usrsvc", "github.com/usrsvc/usrsvc/cmd/usrsvcd")
		out, err := exec.Command(gobin, args...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatalf("building usrsvc and usrsvcd: %v", b.err)
	}
	return b.dir
}

// world is a temp HOME with a usrsvc configuration, run with the built
// binaries. Every program's command is /bin/sleep with a unique duration
// (SECONDS.RUN INDEX), so its title is unique to the world, and it dies by
// itself.
type world struct {
	t    testing.TB
	home string
	bin  string
	// daemonBin, when set, holds the usrsvcd run instead of bin's (a
	// race-detecting build).
	daemonBin string
	cfg       string
	run       string   // 8 digits unique to the world, in every program's command
	main      string   // the [Main] section
	progs     []string // program sections
	env       []string // extra environment of the binaries
	// logPath is usrsvcd's log when [Main] puts it elsewhere than HOME/usrsvcd.log.
	logPath string
	n       int // programs added
}

// newWorld makes a world. With raceDaemon, usrsvcd is built with the race
// detector when the tests run under it (usrsvc is not: it is short-lived and
// the race build makes every operation several times slower).
func newWorld(t testing.TB, raceDaemon bool) *world {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	w := &world{t: t, home: t.TempDir(), bin: binaries(t, false),
		run: fmt.Sprintf("%08d", binary.LittleEndian.Uint64(b[:])%100000000)}
	if raceDaemon && raceEnabled {
		w.daemonBin = binaries(t, true)
	}
	w.cfg = filepath.Join(w.home, "usrsvc.cfg")
	w.main = fmt.Sprintf("[Main]\npidfile = %[1]s/usrsvcd.pid\nstate_dir = %[1]s/state\nusrsvcd_stdout = %[1]s/usrsvcd.log\n", w.home)
	for _, d := range []string{"run", "logs"} {
		require.NoError(t, os.MkdirAll(filepath.Join(w.home, d), 0o700))
	}
	// Last registered, first run: the daemons (their titles hold the
	// config's path) and the programs die before the temp dir goes.
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("USRSVC_CHAOS_LOG") != "" {
			log := w.log()
			if len(log) > 20000 {
				log = "...\n" + log[len(log)-20000:]
			}
			t.Logf("usrsvcd log:\n%s", log)
		}
		testproc.KillToken(w.cfg)
		testproc.KillToken("." + w.run)
	})
	return w
}

func (w *world) path(name string) string { return filepath.Join(w.home, name) }

// sleepCmd is a /bin/sleep command line unique to the world: it sleeps
// about secs seconds.
func (w *world) sleepCmd(secs string, i int) string {
	if !strings.Contains(secs, ".") {
		secs += "."
	}
	return fmt.Sprintf("/bin/sleep %s%s%04d", secs, w.run, i)
}

// program adds [Program:name] running command, with extra lines (which
// may override success_seconds and term_to_kill_seconds).
func (w *world) program(name, command string, extra ...string) {
	lines := []string{"[Program:" + name + "]", "command = " + command,
		"pidfile = " + w.path("run/"+name+".pid"), "stdout = " + w.path("logs/"+name+".log")}
	rest := strings.Join(extra, "\n")
	if !strings.Contains(rest, "success_seconds") {
		lines = append(lines, "success_seconds = 0.3")
	}
	if !strings.Contains(rest, "term_to_kill_seconds") {
		lines = append(lines, "term_to_kill_seconds = 2")
	}
	w.progs = append(w.progs, strings.Join(append(lines, extra...), "\n")+"\n")
	w.n++
}

// sleepers adds n programs p0000…, each a unique long sleep, and returns
// their names and titles.
func (w *world) sleepers(n int, extra ...string) (names, titles []string) {
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("p%04d", i)
		cmd := w.sleepCmd("600", w.n)
		w.program(name, cmd, extra...)
		names = append(names, name)
		titles = append(titles, cmd)
	}
	return names, titles
}

func (w *world) write() {
	text := w.main + "\n" + strings.Join(w.progs, "\n")
	require.NoError(w.t, os.WriteFile(w.cfg, []byte(text), 0o600))
}

// command runs bin/NAME --config CFG args with HOME set to the world's.
func (w *world) command(name string, args ...string) *exec.Cmd {
	bin := w.bin
	if name == "usrsvcd" && w.daemonBin != "" {
		bin = w.daemonBin
	}
	cmd := exec.Command(filepath.Join(bin, name), append([]string{"--config", w.cfg}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+w.home, "USRSVC_CONFIG=")
	cmd.Env = append(cmd.Env, w.env...)
	return cmd
}

// exec runs a command and returns its exit code, stdout and stderr.
func execCode(t testing.TB, cmd *exec.Cmd) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		if !ee.Exited() {
			return -1, stdout.String(), stderr.String() + "\n" + ee.String()
		}
		return ee.ExitCode(), stdout.String(), stderr.String()
	} else if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return 0, stdout.String(), stderr.String()
}

func (w *world) usrsvc(args ...string) (int, string, string) {
	w.t.Helper()
	return execCode(w.t, w.command("usrsvc", args...))
}

func (w *world) usrsvcd(args ...string) (int, string, string) {
	w.t.Helper()
	return execCode(w.t, w.command("usrsvcd", args...))
}

// startDaemon runs usrsvcd start and returns the daemon's pid.
func (w *world) startDaemon() int {
	w.t.Helper()
	code, out, errOut := w.usrsvcd("start")
	require.Equal(w.t, 0, code, out+errOut)
	return w.daemonPID()
}

// daemonPID reads usrsvcd's pidfile (0 when there is none).
func (w *world) daemonPID() int {
	data, err := os.ReadFile(w.path("usrsvcd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

func (w *world) log() string {
	p := w.logPath
	if p == "" {
		p = w.path("usrsvcd.log")
	}
	data, _ := os.ReadFile(p)
	return string(data)
}

// snapshot maps every title of ours to its live (non-zombie) pids.
func snapshot(t testing.TB) map[string][]int {
	t.Helper()
	s, err := proc.Default().Snapshot(os.Getuid())
	require.NoError(t, err)
	m := map[string][]int{}
	for _, p := range s.Procs {
		if !p.Zombie() {
			m[p.Title] = append(m[p.Title], p.PID)
		}
	}
	for _, pids := range m {
		sort.Ints(pids)
	}
	return m
}

// daemonFigures are what a leak would grow. AnonKB is RssAnon: the memory
// the daemon itself holds (VmRSS also counts the pages of its executable,
// which come and go with the page cache).
type daemonFigures struct {
	AnonKB, HeapKB, Threads, FDs, Goroutines int
}

func (f daemonFigures) String() string {
	return fmt.Sprintf("RssAnon %.1f MB, live heap %d kB, %d threads, %d fds, %d goroutines",
		float64(f.AnonKB)/1024, f.HeapKB, f.Threads, f.FDs, f.Goroutines)
}

// figures reads the daemon's RssAnon, threads and fds from /proc, and its
// goroutines and live heap from the log line SIGUSR2 makes it write.
func (w *world) figures(pid int) daemonFigures {
	w.t.Helper()
	var f daemonFigures
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(w.t, err)
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		switch k {
		case "RssAnon":
			f.AnonKB, _ = strconv.Atoi(fields[0])
		case "Threads":
			f.Threads, _ = strconv.Atoi(fields[0])
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(w.t, err)
	f.FDs = len(fds)
	before := strings.Count(w.log(), "event=logs-reopened")
	require.NoError(w.t, syscall.Kill(pid, syscall.SIGUSR2))
	testproc.WaitFor(w.t, 10*time.Second, func() bool { return strings.Count(w.log(), "event=logs-reopened") > before },
		"the daemon's logs-reopened line")
	lines := strings.Split(w.log(), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if _, v, ok := strings.Cut(lines[i], "event=logs-reopened goroutines="); ok {
			fields := strings.Fields(v)
			f.Goroutines, _ = strconv.Atoi(fields[0])
			if len(fields) > 1 {
				f.HeapKB, _ = strconv.Atoi(strings.TrimPrefix(fields[1], "heap_kb="))
			}
			break
		}
	}
	return f
}

// figure logs a measured figure for RELIABILITY.md.
func figure(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURE: "+format, args...)
}

// envInt reads an integer tuning variable (set by bench/soak.sh).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// envDuration reads a duration tuning variable (set by bench/soak.sh).
func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// envString reads a string tuning variable (set by bench/soak.sh).
func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// waitStarted waits until the daemon has logged n "started" events in all.
func (w *world) waitStarted(n int, d time.Duration) {
	w.t.Helper()
	testproc.WaitFor(w.t, d, func() bool { return strings.Count(w.log(), "event=started") >= n },
		fmt.Sprintf("%d starts logged by usrsvcd", n))
}

// heavyMu serializes the tests that load the machine (many programs, CPU
// hogs): they run one at a time, while the light ones (mostly waiting) run
// beside them.
var heavyMu sync.Mutex

// heavy marks t parallel with the light tests but alone among the heavy
// ones.
func heavy(t *testing.T) {
	t.Helper()
	t.Parallel()
	heavyMu.Lock()
	t.Cleanup(heavyMu.Unlock)
}

// cpuTime is the CPU time pid used, its reaped children included (for
// usrsvcd: its launchers), from /proc/PID/stat.
func cpuTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime (fields 14-17)
		n, err := strconv.ParseInt(f[i], 10, 64)
		require.NoError(t, err)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}
