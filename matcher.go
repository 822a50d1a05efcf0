package usrsvc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/atomicfile"
	"github.com/usrsvc/usrsvc/internal/errs"
	"github.com/usrsvc/usrsvc/internal/home"
	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/statedir"
)

// Matcher finds programs' processes exactly as usrsvc does:
//
//  1. The pidfile: when it names a live process of this account that
//     matches the program, that is the process. Otherwise the pidfile is
//     stale (Find explains why in its warnings) and, with autopid, removed;
//     a stale pid is never taken for the program.
//  2. A scan (scan_for_process): the account's own processes, in one pass
//     over /proc; among those that match, the root of the matching tree (a
//     match whose parent is not one), then the oldest. With autopid the
//     pidfile is written for what it adopts.
//
// A process matches when it belongs to the current real uid, is not a
// zombie, and its title (its command line) matches proctitle_re, or by
// default is exactly the command line of the program (see [Program]).
// usrsvc's own processes are never a match, whatever proctitle_re says:
// the usrsvc and usrsvcd commands, the launchers that start programs, the
// shell usrsvc ran for a useshell program, and the process the Matcher
// runs in. A process is identified by its pid and its start time, so a
// reused pid is never mistaken for the program.
//
// The zero Matcher is ready to use. One Matcher may serve several Finds,
// one after the other: a scan reads /proc once and the later Finds reuse
// what it read (make a new Matcher for a fresh look).
type Matcher struct {
	ready   bool
	fs      proc.FS // the zero FS is /proc
	uid     int
	self    int
	environ []string // the environment programs inherit; nil: os.Environ()
	mu      sync.Mutex
	snap    *proc.Snapshot
	// shared is true for the matcher of an "all" operation (usage reads
	// skip private memory).
	shared bool
	// daemon caches whether a usrsvcd runs (0 unknown, 1 yes, 2 no).
	daemon int
	// noWrite: an adopting scan does not write the pidfile (a stop
	// cancelling a start looks for a process it is about to stop).
	noWrite bool
}

// Find returns the program's running process, nil when it does not run.
// It may remove a stale pidfile or write the pidfile of an adopted
// process (autopid). The error says why it cannot tell: /proc or the
// pidfile could not be read (it wraps ErrResource when the process ran out
// of open files or memory).
func (mt *Matcher) Find(p *Program) (*Process, error) {
	r, err := mt.find(p)
	if err != nil {
		return nil, err
	}
	return r.Process, nil
}

func (mt *Matcher) init() {
	if !mt.ready {
		mt.ready, mt.uid, mt.self = true, os.Getuid(), os.Getpid()
	}
}

// newMatcher returns a Matcher reading fs, whose programs inherit environ.
func newMatcher(fs proc.FS, environ []string) *Matcher {
	return &Matcher{ready: true, fs: fs, uid: os.Getuid(), self: os.Getpid(), environ: environ}
}

// daemonUp reports whether a usrsvcd supervises cfg's state directory,
// looked up once per operation.
func (mt *Matcher) daemonUp(cfg *Config) bool {
	if mt.daemon == 0 {
		mt.daemon = 2
		if statedir.Dir(cfg.StateDir).DaemonRunning() {
			mt.daemon = 1
		}
	}
	return mt.daemon == 1
}

// prepare takes the snapshot now, so that clones share it.
func (mt *Matcher) prepare() error {
	_, err := mt.snapshot()
	return err
}

// clone returns a matcher sharing mt's snapshot (read-only) and settings,
// for a goroutine that may need a fresh look of its own later.
func (mt *Matcher) clone() *Matcher {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	return &Matcher{ready: mt.ready, fs: mt.fs, uid: mt.uid, self: mt.self, environ: mt.environ, snap: mt.snap,
		shared: mt.shared, daemon: mt.daemon}
}

// forget drops the snapshot: the next scan looks again.
func (mt *Matcher) forget() {
	mt.mu.Lock()
	mt.snap = nil
	mt.mu.Unlock()
}

func (mt *Matcher) cached() *proc.Snapshot {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	return mt.snap
}

func (mt *Matcher) snapshot() (*proc.Snapshot, error) {
	mt.init()
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if mt.snap == nil {
		// Shared with the operations that look at the same moment (usrsvcd
		// restarting many programs at once), never older than this call.
		s, err := mt.fs.SharedSnapshot(mt.uid)
		if err != nil {
			return nil, errs.File("reading /proc", err)
		}
		mt.snap = s
	}
	return mt.snap, nil
}

// via says how a program's process was found.
type via string

const (
	viaPidfile via = "pidfile" // the pidfile names it
	viaScan    via = "scan"    // a scan of the account's processes found it
)

// resolution is what find found.
type resolution struct {
	Process  *Process // nil when not running
	Via      via
	Warnings []string // stale pidfile explained, several matches, ...
	raw      *proc.Process
	// stale is the warning of a stale pidfile, and stalePID the pid it
	// named (0 when it held none): the supervising loop does not repeat
	// it when that pid is the process whose exit it reports.
	stale    string
	stalePID int
}

// launcherTitle is the command line of usrsvc's launchers, of the
// intermediate processes they fork, and of a program's process before its
// exec.
const launcherTitle = "usrsvc-launcher"

// ownProcess reports whether p is one of usrsvc's own processes: a
// launcher (or its fork), or the usrsvc or usrsvcd command.
func ownProcess(p *proc.Process) bool {
	if len(p.Args) == 0 {
		return false
	}
	switch filepath.Base(p.Args[0]) {
	case launcherTitle, "usrsvc", "usrsvcd":
		return true
	}
	return false
}

// matches reports whether p is a live process of ours matching pc.
func (mt *Matcher) matches(pc *Program, p *proc.Process) bool {
	if p == nil || p.Zombie() || p.UID != mt.uid || ownProcess(p) {
		return false
	}
	if !mt.matchTitle(pc, p.Title) {
		return false
	}
	return !isOwnShell(pc, p.Args)
}

// matchTitle reports whether title matches pc's proctitle_re, or its
// default match.
func (mt *Matcher) matchTitle(pc *Program, title string) bool {
	if pc.ProcTitleRE != nil {
		return pc.ProcTitleRE.MatchString(title)
	}
	t := mt.defaultTitle(pc)
	return t != nil && t.match(title)
}

// defaultTitle returns pc's default match, its argv[0] resolved in the
// program's environment.
func (mt *Matcher) defaultTitle(pc *Program) *titleMatch {
	environ := mt.environ
	if environ == nil {
		environ = os.Environ()
	}
	dir := pc.Dir
	if dir == "" {
		dir, _ = home.Dir()
	}
	return pc.defaultTitle(programEnv(pc, environ), dir)
}

// titleRE returns the regexp of pc's match, for messages and the launcher.
func (mt *Matcher) titleRE(pc *Program) string {
	if pc.ProcTitleRE != nil {
		return pc.ProcTitleRE.String()
	}
	if t := mt.defaultTitle(pc); t != nil {
		return t.regexp().String()
	}
	return ""
}

// isOwnShell reports whether args is the shell usrsvc ran for a useshell
// program (sh -c COMMAND): never a match.
func isOwnShell(pc *Program, args []string) bool {
	return pc.UseShell && len(args) == 3 && args[1] == "-c" && args[2] == pc.Command &&
		strings.HasSuffix(args[0], "sh")
}

// find resolves pc's process. A stale pidfile is explained in Warnings and
// removed (autopid); an adopting scan writes the pidfile (autopid).
func (mt *Matcher) find(pc *Program) (*resolution, error) {
	mt.init()
	f := &resolution{}
	raw, stale, stalePID, err := mt.fromPidfile(pc)
	if err != nil {
		// Whether the pidfile's process runs is unknown: neither remove
		// the pidfile nor look elsewhere, which could adopt a second one.
		return f, err
	}
	if raw != nil {
		f.Process, f.Via, f.raw = mt.toProcess(raw), viaPidfile, raw
		return f, nil
	} else if stale != "" {
		f.Warnings = append(f.Warnings, stale)
		f.stale, f.stalePID = stale, stalePID
		if pc.AutoPid {
			if err := os.Remove(pc.Pidfile); err != nil && !errors.Is(err, os.ErrNotExist) {
				f.Warnings = append(f.Warnings, "cannot remove stale pidfile: "+err.Error())
			}
		}
	}
	if !pc.ScanForProcess {
		return f, nil
	}
	snap, err := mt.snapshot()
	if err != nil {
		return f, err
	}
	var matches []*proc.Process
	for _, p := range snap.Sorted() {
		if p.PID != mt.self && mt.matches(pc, p) {
			matches = append(matches, p)
		}
	}
	if len(matches) > 0 && len(pc.siblingPidfiles) > 0 {
		claimed := siblingPids(pc)
		matches = slices.DeleteFunc(matches, func(p *proc.Process) bool { return claimed[p.PID] })
	}
	roots := proc.Roots(matches)
	if len(roots) == 0 {
		return f, nil
	}
	chosen := roots[0]
	if len(roots) > 1 {
		others := make([]string, len(roots)-1)
		for i, p := range roots[1:] {
			others[i] = p.Brief()
		}
		f.Warnings = append(f.Warnings, fmt.Sprintf("several processes match proctitle_re %q; adopted the oldest [%d], also matching: %s",
			mt.titleRE(pc), chosen.PID, strings.Join(others, ", ")))
	}
	f.Process, f.Via, f.raw = mt.toProcess(chosen), viaScan, chosen
	if pc.AutoPid && !mt.noWrite {
		if err := atomicfile.WritePid(pc.Pidfile, chosen.PID); err != nil {
			f.Warnings = append(f.Warnings, "cannot write pidfile: "+err.Error())
		}
	}
	return f, nil
}

// siblingPids are the pids the pidfiles of pc's sibling instances name:
// with numprocs, the instances usually run the same command line, and a
// scan must not take a sibling's process for this one's.
func siblingPids(pc *Program) map[int]bool {
	pids := map[int]bool{}
	for _, f := range pc.siblingPidfiles {
		data, err := atomicfile.ReadLimit(f, maxPidfileSize)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
			pids[pid] = true
		}
	}
	return pids
}

// maxPidfileSize is the most of a pidfile that is read: a pid and a
// newline take a few bytes, so a bigger file is not a pidfile.
const maxPidfileSize = 4096

// fromPidfile returns the pidfile's process when it matches, or why the
// pidfile is stale ("" when there is no pidfile). An error means that it
// cannot tell: the pidfile or the process could not be read for lack of
// open files or memory. The pidfile may name the Matcher's own process
// (usrsvcweb run as a program asks for its own status).
func (mt *Matcher) fromPidfile(pc *Program) (*proc.Process, string, int, error) {
	data, err := atomicfile.ReadLimit(pc.Pidfile, maxPidfileSize)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", 0, nil
		}
		if errors.Is(err, syscall.EFBIG) {
			return nil, fmt.Sprintf("stale pidfile %s: larger than %d bytes, so not a pidfile (a pid and a newline)", pc.Pidfile, maxPidfileSize), 0, nil
		}
		if errs.IsResource(err) {
			return nil, "", 0, errs.File("reading pidfile "+pc.Pidfile, err)
		}
		return nil, fmt.Sprintf("cannot read pidfile %s: %v", pc.Pidfile, err), 0, nil
	}
	text := strings.TrimSpace(string(data))
	pid, err := strconv.Atoi(text)
	if err != nil || pid <= 0 {
		if len(text) > 40 {
			text = text[:40] + "..."
		}
		return nil, fmt.Sprintf("stale pidfile %s: does not hold a pid (%q)", pc.Pidfile, text), 0, nil
	}
	var p *proc.Process
	if snap := mt.cached(); snap != nil {
		p = snap.Procs[pid]
	}
	if p == nil {
		// Not read yet, or maybe another user's: the snapshot holds only ours.
		var err error
		if p, err = mt.fs.Process(pid); errs.IsResource(err) {
			return nil, "", 0, errs.File(fmt.Sprintf("reading process %d of pidfile %s", pid, pc.Pidfile), err)
		}
	}
	switch {
	case p == nil || p.Zombie():
		return nil, fmt.Sprintf("stale pidfile %s: no such process %d", pc.Pidfile, pid), pid, nil
	case p.UID != mt.uid:
		return nil, fmt.Sprintf("stale pidfile %s: process %d belongs to another user (uid %d)", pc.Pidfile, pid, p.UID), pid, nil
	case !mt.matches(pc, p):
		// The title is not repeated: it is another process's command line,
		// which may hold secrets (a password given to a client).
		return nil, fmt.Sprintf("stale pidfile %s: process %d is not %s (its command line does not match proctitle_re %q)",
			pc.Pidfile, pid, pc.Name, mt.titleRE(pc)), pid, nil
	}
	return p, "", 0, nil
}

func (mt *Matcher) toProcess(p *proc.Process) *Process {
	exe, _ := mt.fs.Exe(p.PID)
	return &Process{PID: p.PID, StartTicks: p.StartTicks, Started: p.Started, Title: p.Title,
		Executable: exe, Args: p.Args}
}

// check re-reads pid's process and reports whether it is still the same
// live process (pid + start time) and still matches pc; an error (wrapping
// ErrResource) when the process could not be read for lack of open files
// or memory, in which case it may well still run.
func (mt *Matcher) check(pc *Program, want *Process) (bool, error) {
	mt.init()
	p, err := mt.fs.Process(want.PID)
	if errs.IsResource(err) {
		return false, errs.File(fmt.Sprintf("re-reading process %d", want.PID), err)
	}
	return err == nil && p.StartTicks == want.StartTicks && mt.matches(pc, p), nil
}

// Process identifies one running process of a program. Identity is the pid
// plus the start time (StartTicks), so a reused pid is never mistaken for the
// program.
type Process struct {
	PID        int       // process id
	StartTicks uint64    // start time in clock ticks since boot (field 22 of /proc/PID/stat)
	Started    time.Time // start time as wall-clock time
	Title      string    // /proc/PID/cmdline with NULs turned into spaces
	Executable string    // resolved /proc/PID/exe, "" when unreadable
	Args       []string  // argv
}

// same reports whether p and q are the same process (pid and start time).
func same(p, q *Process) bool {
	return p != nil && q != nil && p.PID == q.PID && p.StartTicks == q.StartTicks
}
