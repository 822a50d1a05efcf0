package usrsvc

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/inotify"
	"github.com/usrsvc/usrsvc/internal/statedir"
)

// watchState pokes the loop when usrsvc records a manual operation
// (programs/NAME.manual.json), so a manual start or stop is seen at once,
// not at the next resolution pass, and has it check its daemon lock when
// the lock file or the state directory is removed or moved (see
// checkDaemonLock). Without inotify the pass still catches both. It
// returns a function that stops watching.
func (l *loop) watchState() func() {
	dir, err := l.lockDir.Ensure(statedir.ProgramsDir)
	if err != nil {
		return func() {}
	}
	w, err := inotify.New(unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_DELETE|unix.IN_MOVED_FROM|
		unix.IN_DELETE_SELF|unix.IN_MOVE_SELF, dir, string(l.lockDir))
	if err != nil {
		return func() {}
	}
	var pending atomic.Bool
	checkLock := func() {
		// A removal comes as a burst of events (rm -r): one check after it.
		if pending.CompareAndSwap(false, true) {
			l.spawn(func() {
				t := time.NewTimer(lockCheckDelay)
				defer t.Stop()
				select {
				case <-t.C:
					pending.Store(false)
					l.send(lockCheckMsg{})
				case <-l.ctx.Done():
				}
			})
		}
	}
	l.spawn(func() {
		for {
			evs, err := w.Read()
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					l.m.log.Debug("state directory watch ended: " + err.Error())
				}
				return
			}
			for _, ev := range evs {
				switch {
				case ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0:
					checkLock()
				case ev.Dir == string(l.lockDir):
					if ev.Name == statedir.DaemonLock && ev.Mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0 {
						checkLock()
					}
				default:
					if prog, ok := strings.CutSuffix(ev.Name, statedir.ManualSuffix); ok {
						l.send(pokeMsg{name: prog})
					}
				}
			}
		}
	})
	return func() { w.Close() }
}

// lockCheckDelay is how long the loop lets a removal of its state
// directory go on before it recreates it.
const lockCheckDelay = 100 * time.Millisecond

// lockCheckMsg asks the loop to check its daemon lock.
type lockCheckMsg struct{}

func (lockCheckMsg) handle(l *loop) { l.checkDaemonLock() }

// checkDaemonLock makes sure that the daemon lock the loop holds is still
// its state directory's: usrsvcd status and start, and every tool, find
// the daemon through it. When the state directory was removed (rm -r) or
// moved away, the lock is held on a file nobody can reach: the daemon
// would look stopped, and a second one could start beside it. So the loop
// recreates the directory (0700) and a new lock file, takes its lock, and
// writes again what the directory held (the records, the reread
// acknowledgement); it watches the new directory. If another daemon has
// taken the new lock meanwhile, this one gives way: Run returns
// ErrDaemonRunning (the programs keep running; the other one adopts them).
// It runs on inotify events and at every resolution pass; a directory that
// cannot be recreated (a full disk) is retried every owedRetry.
func (l *loop) checkDaemonLock() {
	sd := l.lockDir
	if l.daemonLock == nil || sd.HoldsDaemonLock(l.daemonLock) {
		l.lockOwed = false
		return
	}
	f, warn, err := sd.RetakeDaemonLock(l.m.config().DaemonPidfile)
	if errors.Is(err, ErrDaemonRunning) {
		l.fatal = fmt.Errorf("%w: the state directory %s was removed or replaced, and another daemon took its new lock; "+
			"this one (pid %d) exits, leaving the programs to it", err, sd, os.Getpid())
		l.m.log.Error(l.fatal.Error(), "event", "lock-lost")
		return
	}
	if err != nil {
		l.lockOwed = true
		l.fault("daemon-lock", fmt.Sprintf("the state directory %s (or its daemon lock) was removed, and it cannot be "+
			"recreated: %v; until it is, usrsvcd status and start do not see this daemon through it (they find it "+
			"through its pidfile); retrying every %v", sd, err, owedRetry), err)
		return
	}
	if warn != nil {
		l.m.log.Warn(warn.Error(), "event", "warning")
	}
	old := l.daemonLock
	l.daemonLock = f
	old.Close()
	l.lockOwed = false
	delete(l.faults, "daemon-lock")
	l.m.log.Warn(fmt.Sprintf("the state directory %s (or its daemon lock) was removed or moved away: recreated it "+
		"and took the daemon lock again (pid %d); the programs' records are written again", sd, os.Getpid()),
		"event", "state-recreated")
	for _, name := range l.names() {
		l.record(l.progs[name])
	}
	for _, o := range l.removed {
		l.recordRemoved(o, nil, "removed from the configuration, still running")
	}
	if l.lastAck != nil {
		l.writeAck(*l.lastAck)
	}
	l.stopWatchState()
	l.stopWatchState = l.watchState()
}
