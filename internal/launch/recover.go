package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/atomicfile"
	"github.com/usrsvc/usrsvc/internal/proc"
)

// recoverStart tells what is true of a start whose launcher died after it
// took the job (killed during the window): its intermediate died with it,
// so nothing watches the program. At the end of the window, a process of
// the account matching TitleRE (never a launcher, a copy of one before its
// exec, or the program's own shell) is the program: it is recorded
// (AutoPid) and the start succeeded. Otherwise, what runs in the session of
// the program's process (pid, when the launcher told it; it leads that
// session) and started during this start is stopped, as a start in which
// nothing matches stops its tree. note says what happened to the launcher,
// cause is how it ended.
func recoverStart(ctx context.Context, job *Job, pid int, sent time.Time, note string, cause error) (*Result, error) {
	select {
	case <-time.After(time.Until(sent.Add(job.Window))):
	case <-ctx.Done():
		return nil, fmt.Errorf("abandoned after %s: %w", note, context.Cause(ctx))
	}
	re, err := regexp.Compile(job.TitleRE)
	if err != nil {
		return &Result{Outcome: Failed, Err: "proctitle_re: " + err.Error(), Note: note}, nil
	}
	uid := os.Getuid()
	snap, err := proc.Default().Snapshot(uid)
	if err != nil {
		return &Result{Outcome: Failed, Err: note + "; reading /proc to check the program: " + err.Error(),
			Errno: errnoOf(err), Note: note}, nil
	}
	// Started has the boot time's one-second resolution.
	since := sent.Add(-1500 * time.Millisecond)
	var matches, session []*proc.Process
	for _, p := range snap.Sorted() {
		if p.Zombie() || p.UID != uid || p.PID == os.Getpid() || strings.HasPrefix(p.Title, "usrsvc-launcher") {
			continue
		}
		if re.MatchString(p.Title) && !sameArgs(p.Args, job.ShellArgv) {
			matches = append(matches, p)
		} else if pid > 0 && p.SID == pid && !p.Started.Before(since) {
			session = append(session, p)
		}
	}
	if roots := proc.Roots(matches); len(roots) > 0 {
		chosen := roots[0]
		exe, _ := proc.Default().Exe(chosen.PID)
		r := &Result{Outcome: Started, Note: note + "; the program runs (checked by its proctitle_re)",
			Process: &Process{PID: chosen.PID, StartTicks: chosen.StartTicks, Started: chosen.Started,
				Executable: exe, Title: chosen.Title, Args: chosen.Args}}
		for _, p := range roots[1:] {
			r.OtherRoots = append(r.OtherRoots, p.Brief())
		}
		if job.AutoPid {
			if err := atomicfile.WritePid(job.Pidfile, chosen.PID); err != nil {
				r.PidfileErr = err.Error()
			}
		}
		return r, nil
	}
	r := &Result{Note: note, Elapsed: time.Since(sent)}
	if len(session) > 0 {
		for _, p := range session {
			r.Seen = append(r.Seen, p.Brief())
		}
		stopTree(session, job.TermToKill)
		r.Outcome = NoMatch
		return r, nil
	}
	if errors.Is(cause, syscall.EAGAIN) {
		// The launcher died for want of a thread: the account's process
		// limit, which the program's own fork met too, or would have.
		r.Outcome, r.Stage, r.Errno = Failed, StageFork, syscall.EAGAIN
		r.Err = note + "; nothing of the program runs"
		return r, nil
	}
	r.Outcome = Exited
	r.Err = note + "; at the end of success_seconds nothing matching ran (its exit status is unknown: " +
		"the launcher that watched it is gone)"
	return r, nil
}
