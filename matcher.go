package usrsvc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/atomicfile"
	"github.com/usrsvc/usrsvc/internal/proc"
)

// matcher finds programs' processes: the pidfile first, then one scan of
// the account's own processes (see the README's "Finding a program's
// process"). One matcher serves one operation: a
// scan reads /proc once and every program of an "all" operation shares it.
// A matcher is not safe for concurrent use unless prepare was called first.
type matcher struct {
	fs   proc.FS
	uid  int
	self int
	mu   sync.Mutex // guards snap
	snap *proc.Snapshot
	// exclude lists pids a scan never matches (the caller: a usrsvc whose
	// own command line matches a broad proctitle_re is not the program).
	// The program's pidfile may still name the caller: usrsvcweb run as a
	// [Program:web] under usrsvcd asks for its own status.
	exclude map[int]bool
	// shared is true for the matcher of an "all" operation.
	shared bool
	// daemon caches whether a usrsvcd runs (0 unknown, 1 yes, 2 no).
	daemon int
}

// daemonUp reports whether a usrsvcd supervises cfg's state directory,
// looked up once per operation.
func (mt *matcher) daemonUp(cfg *Config) bool {
	if mt.daemon == 0 {
		mt.daemon = 2
		if daemonRunning(cfg) {
			mt.daemon = 1
		}
	}
	return mt.daemon == 1
}

func newMatcher(fs proc.FS) *matcher {
	return &matcher{fs: fs, uid: os.Getuid(), self: os.Getpid(), exclude: map[int]bool{os.Getpid(): true}}
}

// prepare takes the snapshot now, so that clones share it.
func (mt *matcher) prepare() error {
	_, err := mt.snapshot()
	return err
}

// clone returns a matcher sharing mt's snapshot (read-only) and settings,
// for a goroutine that may need a fresh look of its own later.
func (mt *matcher) clone() *matcher {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	return &matcher{fs: mt.fs, uid: mt.uid, self: mt.self, snap: mt.snap, exclude: mt.exclude,
		shared: mt.shared, daemon: mt.daemon}
}

// forget drops the snapshot: the next scan looks again.
func (mt *matcher) forget() {
	mt.mu.Lock()
	mt.snap = nil
	mt.mu.Unlock()
}

func (mt *matcher) cached() *proc.Snapshot {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	return mt.snap
}

func (mt *matcher) snapshot() (*proc.Snapshot, error) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if mt.snap == nil {
		// Shared with the operations that look at the same moment (usrsvcd
		// restarting many programs at once), never older than this call.
		s, err := mt.fs.SharedSnapshot(mt.uid)
		if err != nil {
			return nil, fileError("reading /proc", err)
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
}

// isMatch reports whether p is a live process of ours matching pc.
func (mt *matcher) isMatch(pc *ProgramConfig, p *proc.Process) bool {
	if p == nil || p.Zombie() || p.UID != mt.uid {
		return false
	}
	if !pc.MatchTitle(p.Title) {
		return false
	}
	return !isOwnShell(pc, p.Args)
}

// isOwnShell reports whether args is the shell usrsvc ran for a useshell
// program (sh -c COMMAND): never a match.
func isOwnShell(pc *ProgramConfig, args []string) bool {
	return pc.UseShell && len(args) == 3 && args[1] == "-c" && args[2] == pc.Command &&
		strings.HasSuffix(args[0], "sh")
}

// find resolves pc's process. A stale pidfile is explained in Warnings and
// removed (autopid); an adopting scan writes the pidfile (autopid).
func (mt *matcher) find(pc *ProgramConfig) (*resolution, error) {
	f := &resolution{}
	raw, stale, err := mt.fromPidfile(pc)
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
		if !mt.exclude[p.PID] && mt.isMatch(pc, p) {
			matches = append(matches, p)
		}
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
			pc.TitleRegexp(), chosen.PID, strings.Join(others, ", ")))
	}
	f.Process, f.Via, f.raw = mt.toProcess(chosen), viaScan, chosen
	if pc.AutoPid {
		if err := atomicfile.WritePid(pc.Pidfile, chosen.PID); err != nil {
			f.Warnings = append(f.Warnings, "cannot write pidfile: "+err.Error())
		}
	}
	return f, nil
}

// fromPidfile returns the pidfile's process when it matches, or why the
// pidfile is stale ("" when there is no pidfile). An error means that it
// cannot tell: the pidfile or the process could not be read for lack of
// open files or memory.
// maxPidfileSize is the most of a pidfile that is read: a pid and a
// newline take a few bytes, so a bigger file is not a pidfile.
const maxPidfileSize = 4096

func (mt *matcher) fromPidfile(pc *ProgramConfig) (*proc.Process, string, error) {
	data, err := atomicfile.ReadLimit(pc.Pidfile, maxPidfileSize)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", nil
		}
		if errors.Is(err, syscall.EFBIG) {
			return nil, fmt.Sprintf("stale pidfile %s: larger than %d bytes, so not a pidfile (a pid and a newline)", pc.Pidfile, maxPidfileSize), nil
		}
		if isResourceErr(err) {
			return nil, "", fileError("reading pidfile "+pc.Pidfile, err)
		}
		return nil, fmt.Sprintf("cannot read pidfile %s: %v", pc.Pidfile, err), nil
	}
	text := strings.TrimSpace(string(data))
	pid, err := strconv.Atoi(text)
	if err != nil || pid <= 0 {
		if len(text) > 40 {
			text = text[:40] + "..."
		}
		return nil, fmt.Sprintf("stale pidfile %s: does not hold a pid (%q)", pc.Pidfile, text), nil
	}
	var p *proc.Process
	if snap := mt.cached(); snap != nil {
		p = snap.Procs[pid]
	}
	if p == nil {
		// Not read yet, or maybe another user's: the snapshot holds only ours.
		var err error
		if p, err = mt.fs.Process(pid); isResourceErr(err) {
			return nil, "", fileError(fmt.Sprintf("reading process %d of pidfile %s", pid, pc.Pidfile), err)
		}
	}
	switch {
	case p == nil || p.Zombie():
		return nil, fmt.Sprintf("stale pidfile %s: no such process %d", pc.Pidfile, pid), nil
	case p.UID != mt.uid:
		return nil, fmt.Sprintf("stale pidfile %s: process %d belongs to another user (uid %d)", pc.Pidfile, pid, p.UID), nil
	case !mt.isMatch(pc, p):
		return nil, fmt.Sprintf("stale pidfile %s: process %d does not match proctitle_re %q (title %q)", pc.Pidfile, pid, pc.TitleRegexp(), p.Title), nil
	}
	return p, "", nil
}

func (mt *matcher) toProcess(p *proc.Process) *Process {
	exe, _ := mt.fs.Exe(p.PID)
	return &Process{PID: p.PID, StartTicks: p.StartTicks, Started: p.Started, Title: p.Title,
		Executable: exe, Args: p.Args}
}

// check re-reads pid's process and reports whether it is still the same
// live process (pid + start time) and still matches pc; an error (wrapping
// ErrResource) when the process could not be read for lack of open files
// or memory, in which case it may well still run.
func (mt *matcher) check(pc *ProgramConfig, want *Process) (bool, error) {
	p, err := mt.fs.Process(want.PID)
	if isResourceErr(err) {
		return false, fileError(fmt.Sprintf("re-reading process %d", want.PID), err)
	}
	return err == nil && p.StartTicks == want.StartTicks && mt.isMatch(pc, p), nil
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

// Same reports whether p and q are the same process (pid and start time).
func (p Process) Same(q Process) bool {
	return p.PID == q.PID && p.StartTicks == q.StartTicks
}
