package proc

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Snapshot is the processes of one uid (or all) read in one pass over /proc.
// It is not modified after [FS.Snapshot] returns and may be shared by
// goroutines.
type Snapshot struct {
	// Taken is when the pass began.
	Taken time.Time
	// Procs maps a pid to its process. Zombies are included (State 'Z').
	Procs map[int]*Process
	// Skipped counts processes left out for an error other than vanishing
	// (unreadable or unparsable /proc files, e.g. under hidepid=1): they are
	// not in Procs. It is normally 0.
	Skipped int

	once     sync.Once
	children map[int][]*Process
}

// Snapshot reads every process owned by uid (uid < 0: every process) in one
// pass over the /proc directory. The owner of /proc/PID is checked first, and
// other users' processes are skipped before anything else is read; then stat
// and cmdline are read. Processes vanishing during the pass are left out
// silently. Threads are not listed (only /proc/PID directories, not tasks).
//
// A failure to read the /proc directory itself (or its boot time) is an
// error, and so is running out of open files or memory while reading a
// process: such a snapshot would lack live processes, and a caller would
// take them for gone. Other unreadable processes are counted in Skipped.
func (fs FS) Snapshot(uid int) (*Snapshot, error) {
	s := &Snapshot{Taken: time.Now(), Procs: make(map[int]*Process)}
	boot, err := fs.BootTime()
	if err != nil {
		return nil, err
	}
	root := fs.root()
	dirfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, wrapErr("open", root, err)
	}
	defer unix.Close(dirfd)
	r := reader{dirfd: dirfd, boot: boot, buf: make([]byte, 0, 4096)}
	dents := make([]byte, 32<<10)
	names := make([]string, 0, 256)
	for {
		n, err := unix.Getdents(dirfd, dents)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, wrapErr("getdents", root, err)
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(dents[:n], -1, names[:0])
		for _, name := range names {
			pid, ok := atoi([]byte(name))
			if !ok || pid == 0 {
				continue // self, thread-self, sys, meminfo, ...
			}
			p, err := r.process(name, pid, uid, true)
			switch {
			case err == nil && p == nil: // another user's
			case err == nil:
				s.Procs[pid] = p
			case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH):
				// vanished during the pass
			case exhausted(err):
				return nil, err
			default:
				s.Skipped++
			}
		}
	}
	return s, nil
}

// Sorted returns the processes ordered by pid.
func (s *Snapshot) Sorted() []*Process {
	ps := make([]*Process, 0, len(s.Procs))
	for _, p := range s.Procs {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, byPID)
	return ps
}

// Children returns the direct children of pid present in the snapshot,
// ordered by pid. The parent index is built on the first call.
func (s *Snapshot) Children(pid int) []*Process {
	s.once.Do(func() {
		s.children = make(map[int][]*Process)
		for _, p := range s.Procs {
			s.children[p.PPID] = append(s.children[p.PPID], p)
		}
		for _, c := range s.children {
			slices.SortFunc(c, byPID)
		}
	})
	return slices.Clone(s.children[pid])
}

// Descendants returns every process below pid in the snapshot (children,
// their children, ...), ordered by pid.
func (s *Snapshot) Descendants(pid int) []*Process {
	var out []*Process
	seen := map[int]bool{pid: true}
	queue := []int{pid}
	for len(queue) > 0 {
		for _, c := range s.Children(queue[0]) {
			if !seen[c.PID] {
				seen[c.PID] = true
				out = append(out, c)
				queue = append(queue, c.PID)
			}
		}
		queue = queue[1:]
	}
	slices.SortFunc(out, byPID)
	return out
}

func byPID(a, b *Process) int { return a.PID - b.PID }

// String describes the process for logs: pid, state and title (or comm).
func (p *Process) String() string {
	t := p.Title
	if t == "" {
		t = "[" + p.Comm + "]"
	}
	return fmt.Sprintf("%d (%c) %s", p.PID, p.State, t)
}

// Brief describes the process for messages: "[PID] title".
func (p *Process) Brief() string { return "[" + strconv.Itoa(p.PID) + "] " + p.Title }

// Roots returns the roots of the tree that matches forms (a match whose
// parent is not a match), oldest first (by start time, then pid). A
// program's process is the first root; the others are reported, not
// adopted.
func Roots(matches []*Process) []*Process {
	isMatch := make(map[int]bool, len(matches))
	for _, p := range matches {
		isMatch[p.PID] = true
	}
	var roots []*Process
	for _, p := range matches {
		if !isMatch[p.PPID] {
			roots = append(roots, p)
		}
	}
	slices.SortFunc(roots, func(a, b *Process) int {
		if a.StartTicks != b.StartTicks {
			return cmp.Compare(a.StartTicks, b.StartTicks)
		}
		return a.PID - b.PID
	})
	return roots
}
