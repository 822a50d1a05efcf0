package launch

import (
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/launch/child"
	"github.com/usrsvc/usrsvc/internal/startlimit"
)

// A launcher starts each program through an intermediate process of its
// own: a plain fork of the launcher, without exec, that runs only the raw
// system calls of package child. The intermediate becomes the child
// subreaper of the program's tree, forks the program's process (a plain
// fork too), which enters a new session and execs the program, reaps
// whatever comes back to it, reports on a pipe, and exits when the tree is
// gone. At the end of the window the launcher kills it, and the program's
// parent becomes init (or the session's subreaper). One launcher process
// (one Go runtime to start) thus serves many programs, while each program
// still has a subreaper of its own: the orphans of a fork-and-exit daemon
// come back to its intermediate and cannot be taken for another program's.
//
// Every process involved has its own memory: nothing the launcher frees
// can be in use by a child, and no Go code runs in a process that shares
// memory with a Go runtime.

// originalNofile returns the RLIMIT_NOFILE this launcher was started with
// when Go's runtime raised it since (and nobody changed it after), so that
// programs get their caller's limit, as syscall.ForkExec gives it.
func originalNofile() *[2]uint64 {
	if !startlimit.Known || startlimit.Max == 0 || startlimit.Cur >= startlimit.Max-1 {
		return nil
	}
	var now syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now) == nil &&
		(now.Cur != startlimit.Max-1 || now.Max != startlimit.Max) {
		return nil // changed since (by prlimit): leave it as it is
	}
	return &[2]uint64{startlimit.Cur, startlimit.Max}
}

// childStart prepares what the forked processes need for job: every
// pointer they use is computed here, before the fork. The byte slices it
// returns hold what the pointers point to, and must be kept alive until
// the fork is done (then the children have their own copies).
func childStart(job *Job, fds [child.NFds]int) (*child.Start, [][]*byte, error) {
	s := &child.Start{Fds: fds, Launcher: launcherPid, Umask: -1}
	if job.SetUmask {
		s.Umask = int(job.Umask & 0o777)
	}
	var err error
	if s.Path, err = syscall.BytePtrFromString(job.Path); err != nil {
		return nil, nil, err
	}
	if len(job.Argv) == 0 {
		return nil, nil, syscall.EINVAL
	}
	argv, err := syscall.SlicePtrFromStrings(job.Argv)
	if err != nil {
		return nil, nil, err
	}
	envv, err := syscall.SlicePtrFromStrings(job.Env)
	if err != nil {
		return nil, nil, err
	}
	s.Argv, s.Envv = &argv[0], &envv[0]
	if job.Dir != "" {
		if s.Dir, err = syscall.BytePtrFromString(job.Dir); err != nil {
			return nil, nil, err
		}
	}
	if nofile != nil {
		s.Nofile, s.HasNofile = *nofile, true
	}
	if len(job.Limits) > child.MaxLimits {
		return nil, nil, syscall.E2BIG
	}
	for i, l := range job.Limits {
		if limitName(l.Resource) == "" {
			return nil, nil, fmt.Errorf("resource limit %d: not one of %s", l.Resource, strings.Join(limitNames(), ", "))
		}
		s.Limits[i] = child.Limit{Resource: uintptr(l.Resource), Rlim: [2]uint64{l.Soft, l.Hard}}
	}
	s.NLimits = len(job.Limits)
	return s, [][]*byte{argv, envv}, nil
}

// Limit is a resource limit of a program, set in its process before its
// exec (with prlimit64). Soft and Hard are as setrlimit(2) takes them
// (RLIM_INFINITY is ^uint64(0)); an account can lower its hard limit but
// not raise it.
type Limit struct {
	Resource int // one of unix.RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_CORE, RLIMIT_AS, RLIMIT_MEMLOCK
	Soft     uint64
	Hard     uint64
}

// The resource limits a program may be given, by name.
var limitResources = []struct {
	name     string
	resource int
}{
	{"RLIMIT_NOFILE", unix.RLIMIT_NOFILE},
	{"RLIMIT_NPROC", unix.RLIMIT_NPROC},
	{"RLIMIT_CORE", unix.RLIMIT_CORE},
	{"RLIMIT_AS", unix.RLIMIT_AS},
	{"RLIMIT_MEMLOCK", unix.RLIMIT_MEMLOCK},
}

// limitName names resource ("" when a program may not be given it).
func limitName(resource int) string {
	for _, r := range limitResources {
		if r.resource == resource {
			return r.name
		}
	}
	return ""
}

func limitNames() []string {
	var names []string
	for _, r := range limitResources {
		names = append(names, r.name)
	}
	return names
}
