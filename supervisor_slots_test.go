package usrsvc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// A crashed program's restart does not wait behind the success windows of
// programs a reread added: start slots follow the program count at every
// reread. (The slots were sized once, for the programs at daemon start: a
// daemon with one program had one slot, and a crash a second after a
// reread added two programs with 10 s windows was restarted 18 s later.)
func TestRestartDoesNotWaitForWindowsOfAddedPrograms(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	first, _ := uniqueSleep(t)
	// Before runLoop: cleanups run in reverse, so the loop stops before
	// these are killed (else it would restart them).
	slow1, tok1 := uniqueSleep(t)
	slow2, tok2 := uniqueSleep(t)
	e.addProgram("first", first)
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	started := evs.wait(t, EventStarted, "first", 1)

	e.addProgram("slow1", slow1, "success_seconds = 10")
	e.addProgram("slow2", slow2, "success_seconds = 10")
	e.write()
	require.NoError(t, m.Reread(ctxT(t)))
	waitFor(t, 10*time.Second, func() bool {
		return len(testproc.PIDsMatching("sleep "+tok1))+len(testproc.PIDsMatching("sleep "+tok2)) > 0
	}, "an added program in its success window")
	time.Sleep(time.Second) // as reproduced: the kill comes a second later

	killed := time.Now()
	require.NoError(t, syscall.Kill(started[0].PID, syscall.SIGKILL))
	waitFor(t, 30*time.Second, func() bool { return len(evs.list(EventStarted, "first")) == 2 }, "first restarted")
	again := evs.list(EventStarted, "first")
	took := again[1].Time.Sub(killed)
	t.Logf("kill -9 → new process started (success_seconds 0.3 s) in %v, while two 10 s windows run", took.Round(time.Millisecond))
	assert.Less(t, took, 5*time.Second, "the restart waited for the windows of the programs the reread added")
	assert.Empty(t, evs.list(EventStarted, "slow1"), "the 10 s windows are still running: the restart did not wait for them")

	// The added programs end their windows (their launchers are done
	// before the test's cleanup).
	waitFor(t, 30*time.Second, func() bool {
		return len(evs.list(EventStarted, "slow1")) == 1 && len(evs.list(EventStarted, "slow2")) == 1
	}, "the added programs started")
}

// With a limit so low that starts must wait for a slot, restarts go first,
// and first starts leave a quarter of the slots (one at least) to them.
func TestStartSlotsPriority(t *testing.T) {
	assert.Equal(t, 0, filePlan{starts: 1, n: 9}.reservedStarts())
	assert.Equal(t, 1, filePlan{starts: 2, n: 9}.reservedStarts())
	assert.Equal(t, 2, filePlan{starts: 8, n: 9}.reservedStarts())
	assert.Equal(t, 0, filePlan{starts: 9, n: 9}.reservedStarts(), "a slot per program: none to reserve")

	// A usual limit: a slot per program, so no start ever waits.
	assert.Equal(t, 300, planFiles(1<<20, 300).starts)
	assert.Equal(t, 300, planFiles(1024, 300).pidfds)
	// 64 open files for 50 programs: pidfds first, one slot left.
	p := planFiles(64, 50)
	assert.Equal(t, 1, p.starts)
	assert.True(t, p.tight(50))

	p = filePlan{starts: 2, n: 4}
	queued := []startReq{{name: "a", first: true}, {name: "b", first: true}, {name: "c", first: true}}
	run, wait := p.admit(queued, 0)
	assert.Equal(t, queued[:1], run, "first starts leave the reserved slot")
	assert.Equal(t, queued[1:], wait)
	run, wait = p.admit(append(wait, startReq{name: "d"}), 1)
	assert.Equal(t, []startReq{{name: "d"}}, run, "a restart takes the reserved slot at once, before b and c")
	assert.Equal(t, queued[1:], wait, "in the order they came")
	run, wait = p.admit(wait, 0)
	assert.Equal(t, queued[1:2], run)
	assert.Equal(t, queued[2:], wait)
	run, _ = p.admit([]startReq{{name: "d"}, {name: "e", monitor: "m"}, {name: "b", first: true}}, 0)
	assert.Equal(t, []startReq{{name: "d"}, {name: "e", monitor: "m"}}, run, "restarts may take every slot")
}

// Starts that fail for want of processes (EAGAIN from fork: the account's
// RLIMIT_NPROC) are warned of once, naming the limit and the fix, as the
// open-file limit is; each failed start is not.
func TestOutOfProcessesWarnedOnce(t *testing.T) {
	e := newTestEnv(t)
	e.addProgram("a", "/bin/true")
	e.addProgram("b", "/bin/true")
	var log testproc.Buffer
	m := e.manager(func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&log, nil)) })
	l := &loop{m: m, progs: map[string]*supervised{}, msgs: make(chan message, 64), ctx: context.Background()}
	l.apply(m.Config())
	l.files = planFiles(1024, 2)
	eagain := &launchError{err: fmt.Errorf("%w: %w", ErrResource, syscall.EAGAIN), message: "fork: resource temporarily unavailable"}
	for i := 0; i < 3; i++ {
		for _, name := range []string{"a", "b"} {
			l.progs[name].busy = true
			l.inFlight++
			l.onOpDone(opDoneMsg{name: name, pc: l.progs[name].pc, st: &Status{Program: name},
				err: &ProgramError{Program: name, Op: ActionStart, Err: eagain}})
		}
	}
	text := log.String()
	assert.Equal(t, 1, strings.Count(text, "programs cannot be started: cannot create a process (EAGAIN"), text)
	assert.Contains(t, text, "ulimit -u")
	assert.Contains(t, text, "LimitNPROC=")
	assert.Equal(t, StateBackoff, l.progs["a"].state)

	// Out of processes for the launcher itself: the errno stays in the chain.
	err := spawnError(fmt.Errorf("fork/exec /proc/self/exe: %w", syscall.EAGAIN))
	assert.ErrorIs(t, err, syscall.EAGAIN)
	assert.ErrorIs(t, err, ErrResource)
}
