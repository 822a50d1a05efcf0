package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ReloadAck is the acknowledgement of the last reload that a usrsvcd (or
// any [Manager.Run]) applied or refused, as it records it in the state
// directory. It is for tools that show the daemon's state (usrsvcweb's
// page); [SignalReread] waits for it.
type ReloadAck struct {
	Version    int       `json:"version"`
	Generation int64     `json:"generation"` // counts reloads since the state directory was created; 0: none yet
	Time       time.Time `json:"time"`
	OK         bool      `json:"ok"`                 // applied; false: refused, the old configuration stays
	Message    string    `json:"message"`            // a summary ("5 programs (1 added, ...)") or why it was refused
	Problems   []string  `json:"problems,omitempty"` // every problem of a refused configuration, file:line first
}

func reloadAckPath(sd stateDir) string { return filepath.Join(string(sd), "usrsvcd.reload.json") }

// readReloadAck reads the last reload acknowledgement (zero when none).
func readReloadAck(sd stateDir) (ReloadAck, error) {
	var a ReloadAck
	err := readJSON(reloadAckPath(sd), &a)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return a, err
	}
	return a, nil
}

// LastReload reads the acknowledgement of the last reload recorded in
// cfg's state directory (the zero ReloadAck when there was none).
func LastReload(cfg *Config) (ReloadAck, error) { return readReloadAck(stateDir(cfg.Main.StateDir)) }

// SignalReread asks the usrsvcd (or any [Manager.Run]) that supervises
// cfg's state directory to reread its configuration — it sends SIGUSR1 —
// and waits for its acknowledgement, which the daemon records in the state
// directory once it has applied the new configuration or refused it. It
// returns the daemon's pid and its summary ("5 programs (1 added, ...)").
//
// The error wraps ErrNotRunning when no daemon runs, ErrPermission when it
// cannot be signalled, ErrInvalidConfig (with every problem) when the
// daemon refused the configuration and keeps its old one, ErrResource or
// ErrPermission when the state directory cannot be written (then no
// acknowledgement can come: the daemon's log tells), and ErrNoAnswer when
// ctx ends first. Validate the configuration first: a daemon never applies
// a broken one, but only its log says why.
func SignalReread(ctx context.Context, cfg *Config) (pid int, summary string, err error) {
	pid, running := DaemonPID(cfg)
	if !running || pid <= 0 {
		return 0, "", fmt.Errorf("%w: usrsvcd is not running: nothing to reread", ErrNotRunning)
	}
	sd := stateDir(cfg.Main.StateDir)
	before, _ := readReloadAck(sd)
	// The daemon acknowledges in the state directory: when nothing can be
	// written there (a full disk), no acknowledgement will come. The reread
	// itself works, so the signal still goes; the answer comes at once.
	unwritable := func(err error) error {
		return fmt.Errorf("usrsvcd (pid %d) was sent the reread, but its acknowledgement cannot be written (%w); "+
			"its log tells whether the configuration was applied", pid, err)
	}
	probe := sd.checkWritable()
	if err := unix.Kill(pid, unix.SIGUSR1); err != nil {
		return pid, "", fmt.Errorf("%w: cannot signal usrsvcd (pid %d): %w", ErrPermission, pid, err)
	}
	if probe != nil {
		return pid, "", unwritable(probe)
	}
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ack, err := readReloadAck(sd)
		if err == nil && ack.Generation > before.Generation {
			if !ack.OK {
				return pid, "", fmt.Errorf("%w: usrsvcd (pid %d) rejected the configuration (%s):\n%s",
					ErrInvalidConfig, pid, ack.Message, strings.Join(ack.Problems, "\n"))
			}
			return pid, ack.Message, nil
		}
		select {
		case <-ctx.Done():
			if err := sd.checkWritable(); err != nil {
				return pid, "", unwritable(err)
			}
			return pid, "", fmt.Errorf("%w: usrsvcd (pid %d) did not acknowledge the reread within %v: %w",
				ErrNoAnswer, pid, time.Since(start).Round(time.Second), context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// Reload applies cfg as a diff: new programs are adopted or autostarted,
// removed ones are no longer managed (never stopped), changed settings take
// effect at the next operation; a running program is never restarted for a
// config change. While [Manager.Run] runs, its loop applies the
// diff and Reload waits for it, or for ctx; otherwise Reload just replaces
// the configuration.
func (m *Manager) Reload(ctx context.Context, cfg *Config) error {
	return m.reload(ctx, cfg, nil)
}

// Reread loads the configuration again from its main file and applies it
// with Reload. On any error it logs every problem, keeps the old
// configuration whole and returns the error (a *ConfigError).
func (m *Manager) Reread(ctx context.Context) error {
	path := m.Config().Path
	if path == "" {
		return fmt.Errorf("%w: this configuration was built in Go and has no file to reread: use Reload", ErrInvalidAction)
	}
	cfg, err := LoadConfig(path)
	return m.reload(ctx, cfg, err)
}

func (m *Manager) reload(ctx context.Context, cfg *Config, loadErr error) error {
	if loadErr == nil && cfg == nil {
		loadErr = fmt.Errorf("%w: nil configuration", ErrInvalidConfig)
	}
	if loadErr == nil {
		for _, pc := range cfg.Programs {
			if pc != nil {
				cfg.fillDefaults(pc)
			}
		}
		if !slices.IsSortedFunc(cfg.Programs, byName) {
			slices.SortStableFunc(cfg.Programs, byName)
		}
		loadErr = cfg.Validate()
	}
	l := m.running.Load()
	if l == nil {
		if loadErr != nil {
			return loadErr
		}
		m.cfg.Store(cfg)
		return nil
	}
	done := make(chan error, 1)
	select {
	case l.msgs <- reloadMsg{cfg: cfg, err: loadErr, done: done}:
	case <-l.ctx.Done():
		return fmt.Errorf("%w: the supervising loop is ending: %w", ErrFailed, l.ctx.Err())
	case <-ctx.Done():
		return fmt.Errorf("%w: reload not sent: %w", ErrFailed, ctx.Err())
	}
	select {
	case err := <-done:
		return err
	case <-l.ctx.Done():
		return fmt.Errorf("%w: the supervising loop is ending: %w", ErrFailed, l.ctx.Err())
	case <-ctx.Done():
		// The loop applies it all the same.
		return fmt.Errorf("%w: stopped waiting for the reload: %w", ErrFailed, ctx.Err())
	}
}

// onReload runs in the loop.
func (l *loop) onReload(msg reloadMsg) error {
	m := l.m
	l.generation++
	ack := ReloadAck{Version: stateVersion, Generation: l.generation, Time: m.now()}
	if msg.err != nil {
		ack.Message = "configuration not reloaded, the old one stays in force"
		var ce *ConfigError
		if errors.As(msg.err, &ce) {
			for _, p := range ce.Problems {
				ack.Problems = append(ack.Problems, p.String())
			}
		} else {
			ack.Problems = []string{msg.err.Error()}
		}
		m.emit(Event{Kind: EventReloadFailed, Reason: strings.Join(ack.Problems, "\n")})
		l.writeAck(ack)
		return msg.err
	}
	old := m.Config()
	m.cfg.Store(msg.cfg)
	added, removed, changed := l.apply(msg.cfg)
	l.planOpenFiles()
	mt := newMatcher(m.fs)
	for _, name := range added {
		l.resolve(l.progs[name], mt)
	}
	ack.OK = true
	ack.Message = fmt.Sprintf("%d programs (%d added, %d removed, %d changed)", len(l.progs), len(added), len(removed), len(changed))
	if old.Main.StateDir != msg.cfg.Main.StateDir {
		ack.Message += "; state_dir changes take effect when usrsvcd restarts"
	}
	reason := ack.Message
	if len(added)+len(removed)+len(changed) > 0 {
		reason += fmt.Sprintf(": added %v, removed %v, changed %v", added, removed, changed)
	}
	m.emit(Event{Kind: EventReloaded, Reason: reason})
	l.writeAck(ack)
	return nil
}

func (l *loop) writeAck(a ReloadAck) {
	if err := writeJSON(reloadAckPath(l.m.state()), a); err != nil {
		l.ackOwed = &a
		l.fault("ack", "cannot record the reread acknowledgement: "+err.Error()+"; it is written when writes succeed again", err)
		return
	}
	l.ackOwed = nil
	l.cleared("ack", "the reread acknowledgement is written again")
}
