// Package launch is usrsvc's launcher: the short-lived process that starts
// one program detached, so that the program's parent is init (or the
// session's subreaper), never its caller.
//
// The caller ([Spawn]) re-executes a binary that imports package usrsvc —
// normally itself, through /proc/self/exe — with [EnvMarker] set. This
// package's init sees the marker and runs [Main] before the binary's main,
// as soon as the few packages it needs are initialised: the launcher does
// not pay for initialising the rest of the binary (the usrsvc package's
// regexps, the net and shell-parser packages, an embedder's own). Its
// runtime is set for a short life ([launcherRuntimeEnv]). The launcher receives its [Job] over an inherited
// pipe (never in its argv: its own title must not match the program's
// proctitle_re), starts the program in a new session, watches the
// program's tree for the success window, writes the pidfile, and reports a
// typed [Result] over a second pipe before it exits. It also inherits the
// program's lock and holds it until the program is recorded, so a caller
// killed during the window never leaves an unrecorded program.
package launch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EnvMarker marks a process as a usrsvc launcher ("USRSVC_LAUNCHER=1").
const EnvMarker = "USRSVC_LAUNCHER"

// IsLauncher reports whether this process was started as a launcher.
func IsLauncher() bool { return os.Getenv(EnvMarker) == "1" }

// Fds the launcher receives from its caller.
const (
	jobFd    = 3 // read end of the job pipe (the encoded Job)
	resultFd = 4 // write end of the result pipe (the encoded Result)
	lockFd   = 5 // the program's lock file, held until the program is recorded
)

// launcherRuntimeEnv tunes the Go runtime of the launcher, a process that
// lives one success window and does little: one P (no GC workers or idle
// Ps to start), no garbage collection below 64 MiB of heap (it allocates a
// few hundred kB), and no heap profile sampling (its first sample unwinds a
// stack). Measured with bench/ab.sh, 100-200 parallel starts: about 10 %
// less CPU per start. The program never sees these variables: its
// environment is the job's.
var launcherRuntimeEnv = []string{"GOMAXPROCS=1", "GOGC=off", "GOMEMLIMIT=64MiB", "GODEBUG=memprofilerate=0"}

// Stripped lists the environment variables that never reach a program:
// the launcher's marker and systemd's per-service variables, which
// describe usrsvcd's unit, not the program.
var Stripped = []string{EnvMarker, "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS",
	"LISTEN_FDNAMES", "WATCHDOG_PID", "WATCHDOG_USEC"}

// IsStripped reports whether the variable named key is in [Stripped].
func IsStripped(key string) bool {
	for _, s := range Stripped {
		if key == s {
			return true
		}
	}
	return false
}

// CleanEnv returns env without the [Stripped] variables and without the
// extra ones; env is not modified.
func CleanEnv(env []string, extra ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if IsStripped(k) || contains(extra, k) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Job is what the caller sends the launcher.
type Job struct {
	// Probe asks only for a [Probed] result: the binary can serve as the
	// launcher. Nothing is started.
	Probe bool `json:",omitempty"`

	Path    string   // the resolved executable
	Argv    []string // argv of the program (or of its shell)
	Env     []string // the program's whole environment
	Dir     string   // its working directory
	Stdout  string   // appended to
	Stderr  string   // appended to; may equal Stdout
	Window  time.Duration
	Pidfile string // written on success when AutoPid
	AutoPid bool
	TitleRE string // proctitle_re, Go regexp syntax
	// ShellArgv is, for a useshell program, the shell's own argv: the
	// shell is never a match.
	ShellArgv []string `json:",omitempty"`
	// TermToKill is the SIGTERM → SIGKILL grace used to stop a tree in
	// which nothing matched (at most 10 s).
	TermToKill time.Duration
}

// Outcome says how a launch ended.
type Outcome string

// The outcomes of a launch.
const (
	// Started: a process matching TitleRE runs at the end of the window.
	Started Outcome = "started"
	// ExecFailed: the program could not be executed (Errno says why).
	ExecFailed Outcome = "exec-failed"
	// ShellFailed: the useshell shell exited 126 or 127 during the window
	// (the command is not executable or not found).
	ShellFailed Outcome = "shell-failed"
	// Exited: the program and every descendant ended during the window.
	Exited Outcome = "exited"
	// NoMatch: something runs but nothing matches TitleRE; what ran was
	// stopped (Seen lists it).
	NoMatch Outcome = "no-match"
	// FilesFailed: stdout or stderr could not be opened (Err says why).
	FilesFailed Outcome = "files-failed"
	// Failed: the launcher itself failed (a bad job, /proc unreadable).
	Failed Outcome = "failed"
	// Probed answers a probe job.
	Probed Outcome = "probed"
)

// Result is what the launcher reports: typed facts, not messages (the
// caller words them).
type Result struct {
	Outcome Outcome
	// Err is the error text for ExecFailed, FilesFailed and Failed.
	Err string `json:",omitempty"`
	// Errno is the errno of ExecFailed, and of FilesFailed and Failed when
	// a system call failed (EMFILE, ENOSPC, ... tell a resource ran out).
	Errno syscall.Errno `json:",omitempty"`
	// Process is the matched process (Started).
	Process *Process `json:",omitempty"`
	// Wait is the wait status of the launched process when it ended during
	// the window, at ExitTime.
	Wait     *syscall.WaitStatus `json:",omitempty"`
	ExitTime time.Time           `json:",omitzero"`
	// Elapsed is the time from the launch to the end of the tree (Exited).
	Elapsed time.Duration `json:",omitempty"`
	// Stderr is what the stderr file gained since the launch, last lines
	// (on failure).
	Stderr []string `json:",omitempty"`
	// Seen lists the live descendants ("[PID] title") when nothing matched.
	Seen []string `json:",omitempty"`
	// OtherRoots lists the other matching roots ("[PID] title") when
	// several matched: the oldest was chosen.
	OtherRoots []string `json:",omitempty"`
	// PidfileErr is why the pidfile could not be written (Started).
	PidfileErr string `json:",omitempty"`
	// SubreaperErr is why the launcher could not become the child
	// subreaper of the program's tree (then a fork-and-exit program looks
	// exited).
	SubreaperErr string `json:",omitempty"`
}

// Process is the matched process, as read at the end of the window.
type Process struct {
	PID        int
	StartTicks uint64
	Started    time.Time
	Executable string
	Title      string
	Args       []string
}

// ErrStart is wrapped by Spawn's error when the launcher cannot be started
// at all (the binary is missing or not executable).
var ErrStart = errors.New("cannot start the launcher")

// abandoned are launchers whose caller stopped waiting: they finish on
// their own and are reaped, without a goroutine, by the next Spawn or Reap.
var abandoned struct {
	sync.Mutex
	cmds []*exec.Cmd
}

// Reap reaps the abandoned launchers that have exited, without waiting.
func Reap() {
	abandoned.Lock()
	defer abandoned.Unlock()
	live := abandoned.cmds[:0]
	for _, c := range abandoned.cmds {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(c.Process.Pid, &ws, syscall.WNOHANG, nil)
		if pid == 0 && err == nil {
			live = append(live, c)
			continue
		}
		c.Process.Release()
	}
	abandoned.cmds = live
}

// Spawn runs exe as the launcher for job and waits for its result. lock
// (may be nil) is passed to the launcher, which holds it until it exits.
// When ctx is done first, Spawn returns ctx's error (wrapped) at once and
// leaves no goroutine behind: the launcher finishes the start by itself and
// is reaped later (see [Reap]).
func Spawn(ctx context.Context, exe string, job *Job, lock *os.File) (*Result, error) {
	Reap()
	payload := encodeJob(job)
	jobR, jobW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("job pipe: %w", err)
	}
	defer jobR.Close()
	defer jobW.Close()
	resR, resW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("result pipe: %w", err)
	}
	defer resR.Close()
	defer resW.Close()

	cmd := exec.Command(exe)
	cmd.Args = []string{"usrsvc-launcher"}
	cmd.Env = append([]string{EnvMarker + "=1"}, launcherRuntimeEnv...)
	cmd.Dir = "/"
	files := []*os.File{jobR, resW}
	if lock != nil {
		files = append(files, lock)
	}
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrStart, exe, err)
	}
	jobR.Close()
	resW.Close()

	// Both pipe ends are in Go's netpoller: closing them unblocks these
	// goroutines, which are always joined before Spawn returns.
	var wg sync.WaitGroup
	wg.Add(2)
	written := make(chan struct{})
	go func() {
		defer wg.Done()
		defer close(written)
		jobW.Write(payload) // an error means the launcher died: its result says
		jobW.Close()
	}()
	type readResult struct {
		data []byte
		err  error
	}
	ch := make(chan readResult, 1)
	go func() {
		defer wg.Done()
		data, err := io.ReadAll(resR)
		ch <- readResult{data, err}
	}()
	select {
	case rr := <-ch:
		wg.Wait()
		cmd.Wait() // the launcher exits right after reporting
		if rr.err != nil {
			return nil, fmt.Errorf("reading the launcher's result: %w", rr.err)
		}
		if len(rr.data) == 0 {
			return nil, errors.New("the launcher exited without reporting")
		}
		var res Result
		if rr.data[0] == resultMagic {
			err = decodeResult(rr.data, &res)
		} else { // a launcher of an older build
			err = json.Unmarshal(rr.data, &res)
		}
		if err != nil {
			return nil, fmt.Errorf("decoding the launcher's result: %w", err)
		}
		return &res, nil
	case <-ctx.Done():
		// The launcher reads its job at once: let it have the whole job
		// (a truncated one would start nothing), unless it is stuck.
		select {
		case <-written:
		case <-time.After(time.Second):
			jobW.Close()
		}
		resR.Close()
		wg.Wait()
		abandoned.Lock()
		abandoned.cmds = append(abandoned.cmds, cmd)
		abandoned.Unlock()
		// The launcher goes on by itself: it holds the lock and records
		// the program, so abandoning it leaves nothing half-done.
		return nil, fmt.Errorf("abandoned while the launcher runs: %w", context.Cause(ctx))
	}
}
