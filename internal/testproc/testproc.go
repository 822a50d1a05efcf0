// Package testproc runs helper processes for tests, by re-executing the test
// binary (the os/exec TestHelperProcess pattern).
//
// A package whose tests use helpers calls [Main] first in its TestMain:
//
//	func TestMain(m *testing.M) { testproc.Main(); os.Exit(m.Run()) }
//
// A test then describes a helper with [New], and runs it as its own child
// ([Helper.Start]), detached from the test ([Helper.Detach]), or hands
// [Helper.CommandLine] to the code under test (a program's command). Every
// helper carries a unique token in its argv, so tests never see each other's
// helpers (or a stranger's process), writes its pid to a ready file once its
// behaviour is in effect, and exits by itself at its deadline, so that no
// test leaks a process even when its cleanup never runs.
//
// Faults are real too: [Tmpfs] mounts a small file system (root only) that
// [Fill] fills up, and [WithOpenFileLimit] runs a command under a low
// RLIMIT_NOFILE.
//
// Behaviours (positional arguments and options after the name):
//
//	sleep                        ready, then block until the deadline
//	fork-and-exit [--delay=DUR]  start a setsid copy of itself as "sleep" (or as
//	    [--behaviour=NAME ARGS]  NAME with ARGS), which writes the ready file;
//	                             exit 0 once it is spawned (after DUR)
//	exit-after DUR CODE          ready, then exit with CODE after DUR;
//	    [--stderr=TEXT ...]      writing each TEXT as a line to stderr first
//	ignore-term                  ignore SIGTERM, ready, block
//	grow-rss MB                  allocate MB MiB of private dirty memory, ready, block
//	touch-file PATH INTERVAL     touch PATH every INTERVAL, ready, block;
//	    [--stop-after=DUR]       stop touching (but keep running) after DUR
//	crash                        a line to stderr, exit 1 at once (never ready)
//	spawn-child                  start a "sleep" child (same token), ready, block
//	print-env NAME...            print NAME=value lines to stdout, ready, block
package testproc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// Marker is os.Args[1] of a helper process.
const Marker = "testproc"

// DefaultDeadline is the lifetime of a helper started from a [New] Helper:
// it exits by itself (status 0) when it runs out. [Helper.WithDeadline]
// changes it for one helper.
var DefaultDeadline = 2 * time.Minute

// Helper describes a helper process. [New] fills it; it starts nothing.
type Helper struct {
	// Token is unique to this helper, e.g. "tp-sleep-0123456789abcdef". It
	// appears in Argv, so in the title of every process of the helper
	// (children included).
	Token string
	// Argv is the command: the absolute path of the test binary, Marker,
	// the behaviour, "--token=TOKEN", "--ready=FILE", "--deadline=DUR",
	// then the behaviour's arguments.
	Argv []string
	// ReadyFile is where the helper writes its pid (atomically) once its
	// behaviour is in effect. It is in a directory of its own.
	ReadyFile string

	// Stdout and Stderr receive the output of a helper run by Start (nil:
	// /dev/null). A writer that is not an *os.File is written by a
	// goroutine of os/exec until the helper exits: read it after
	// [Helper.Wait]. Detach sends the output to /dev/null.
	Stdout, Stderr io.Writer

	behaviour string
	args      []string
	cmd       *exec.Cmd // the last Start
}

// New describes a helper running behaviour with args (it does not start it)
// and registers a cleanup that kills, by pid, every process of ours whose
// title contains the token (SIGKILL), and waits briefly for them to exit.
func New(t testing.TB, behaviour string, args ...string) *Helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("testproc: %v", err)
	}
	exe, err = filepath.Abs(exe)
	if err != nil {
		t.Fatalf("testproc: %v", err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	h := &Helper{
		Token:     "tp-" + behaviour + "-" + hex.EncodeToString(rnd[:]),
		behaviour: behaviour,
		args:      args,
	}
	h.ReadyFile = filepath.Join(t.TempDir(), h.Token+".ready")
	h.Argv = h.argv(exe, behaviour, DefaultDeadline, args)
	// Registered after TempDir's cleanup, so it runs before it (LIFO): the
	// helpers are dead before their directory is removed.
	t.Cleanup(func() { KillToken(h.Token) })
	return h
}

func (h *Helper) argv(exe, behaviour string, deadline time.Duration, args []string) []string {
	return append([]string{exe, Marker, behaviour, "--token=" + h.Token, "--ready=" + h.ReadyFile,
		"--deadline=" + deadline.String()}, args...)
}

// WithDeadline sets the helper's lifetime (instead of [DefaultDeadline]) and
// returns h.
func (h *Helper) WithDeadline(d time.Duration) *Helper {
	h.Argv = h.argv(h.Argv[0], h.behaviour, d, h.args)
	return h
}

// CommandLine returns Argv as one shell command line, each argument quoted
// when it needs to be.
func (h *Helper) CommandLine() string {
	q := make([]string, len(h.Argv))
	for i, a := range h.Argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// Quote quotes s for a POSIX shell, when it needs to be.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("@%+=:,./_-", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// WaitReady waits up to timeout for the ready file and returns the pid it
// holds; it fails the test at the timeout, or as soon as a helper run by
// Start has exited without writing it.
func (h *Helper) WaitReady(t testing.TB, timeout time.Duration) int {
	t.Helper()
	pid, err := h.waitReady(timeout)
	if err != nil {
		t.Fatalf("testproc: %s: %v", h.Token, err)
	}
	return pid
}

func (h *Helper) waitReady(timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		if pid, ok := h.ready(); ok {
			return pid, nil
		}
		if h.exitedEarly() {
			if pid, ok := h.ready(); ok {
				return pid, nil
			}
			return 0, errors.New("exited before it was ready")
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not ready after %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exitedEarly reports whether the helper started by Start has exited (a
// zombie: Start's cleanup reaps it), when it should still be running.
func (h *Helper) exitedEarly() bool {
	if h.cmd == nil || h.behaviour == "fork-and-exit" {
		return false
	}
	p, err := proc.Default().Stat(h.cmd.Process.Pid)
	return err == nil && p.Zombie() || errors.Is(err, os.ErrNotExist)
}

// Ready returns the pid in the ready file, if the helper has written it.
func (h *Helper) Ready() (int, bool) { return h.ready() }

func (h *Helper) ready() (int, bool) {
	b, err := os.ReadFile(h.ReadyFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 0
}

// PIDs returns the live (non-zombie) processes of ours whose title contains
// the token, sorted.
func (h *Helper) PIDs() []int { return pidsOf(h.Token) }

// PIDsMatching returns the live (non-zombie) processes of ours whose title
// contains s, sorted: for processes that are not helpers.
func PIDsMatching(s string) []int { return pidsOf(s) }

func pidsOf(token string) []int {
	s, err := proc.Default().Snapshot(os.Getuid())
	if err != nil {
		return nil
	}
	var pids []int
	for _, p := range s.Procs {
		if !p.Zombie() && strings.Contains(p.Title, token) {
			pids = append(pids, p.PID)
		}
	}
	slices.Sort(pids)
	return pids
}

// Start starts the helper as a direct child of the test. It is killed and
// reaped at cleanup.
func (h *Helper) Start(t testing.TB) *os.Process {
	t.Helper()
	cmd := exec.Command(h.Argv[0], h.Argv[1:]...)
	if h.Stdout != nil {
		cmd.Stdout = h.Stdout
	}
	if h.Stderr != nil {
		cmd.Stderr = h.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testproc: start %s: %v", h.Token, err)
	}
	h.cmd = cmd
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process
}

// Wait waits for the helper started by [Helper.Start] to exit and for its
// output to be copied to Stdout and Stderr (exec.Cmd.Wait). Call it at most
// once, and not after waiting on the *os.Process from Start.
func (h *Helper) Wait() (*os.ProcessState, error) {
	if h.cmd == nil {
		return nil, errors.New("testproc: Wait without Start")
	}
	err := h.cmd.Wait()
	return h.cmd.ProcessState, err
}

// Detach starts the helper detached from the test: a fork-and-exit helper,
// the test's child, starts it in a new session and exits, so that its
// parent is the system's reaper, not the test. It returns the pid of the
// detached helper once it is ready (within 10 s, or the test fails).
func (h *Helper) Detach(t testing.TB) int {
	t.Helper()
	argv := slices.Clone(h.Argv)
	if h.behaviour != "fork-and-exit" {
		argv[2] = "fork-and-exit"
		argv = slices.Insert(argv, 6, "--behaviour="+h.behaviour)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("testproc: detach %s: %v: %s", h.Token, err, stderr.Bytes())
	}
	return h.WaitReady(t, 10*time.Second)
}

// KillToken sends SIGKILL to every process of ours whose title contains
// token, by pid (through a pidfd opened after re-checking the title), again
// until none is left, and waits up to 5 seconds for them to exit. Zombies
// count as exited.
func KillToken(token string) {
	if token == "" {
		return
	}
	fs := proc.Default()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		pids := pidsOf(token)
		if len(pids) == 0 {
			return
		}
		var fds []*proc.Pidfd
		for _, pid := range pids {
			fd, err := proc.PidfdOpen(pid)
			if err != nil {
				_ = syscall.Kill(pid, syscall.SIGKILL) // no pidfd: by pid
				continue
			}
			// The pid might have been reused since the snapshot.
			if p, err := fs.Process(pid); err != nil || !strings.Contains(p.Title, token) {
				fd.Close()
				continue
			}
			if err := fd.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			fds = append(fds, fd)
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		for _, fd := range fds {
			_ = fd.Wait(ctx)
			fd.Close()
		}
		cancel()
		time.Sleep(time.Millisecond) // let a helper caught mid-fork show its child
	}
}

// Alive reports whether pid runs and is not a zombie (an exited process
// that nobody reaped yet counts as gone).
func Alive(pid int) bool {
	p, err := proc.Default().Stat(pid)
	return err == nil && !p.Zombie()
}

// WaitFor polls cond every 10 ms until it holds, failing the test with msg
// after d. Tests use generous d: it bounds a wait, it does not time anything.
func WaitFor(t testing.TB, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for: %s", d, msg)
}
