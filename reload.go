package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/usrsvc/usrsvc/internal/statedir"
)

// Reload applies cfg as a diff: new programs are adopted or autostarted,
// removed ones are no longer managed (stopped only with [Main]
// stop_removed = true; else, while they run, status all lists them as
// removed), changed settings take
// effect at the next operation; a running program is never restarted for a
// config change. While [Manager.Run] runs, its loop applies the
// diff and Reload waits for it, or for ctx; otherwise Reload just replaces
// the configuration. The Manager keeps its own copy of cfg.
func (m *Manager) Reload(ctx context.Context, cfg *Config) error {
	return m.reload(ctx, cfg, nil)
}

// Reread loads the configuration again from its main file and applies it
// with Reload. On any error it logs every problem, keeps the old
// configuration whole and returns the error (a *ConfigError).
func (m *Manager) Reread(ctx context.Context) error {
	path := m.config().Path
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
		// The Manager works on its own copy: the caller's cfg is not changed.
		cfg, loadErr = cfg.complete()
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
	ack := statedir.ReloadAck{Generation: l.generation, Time: m.now()}
	if msg.err != nil {
		ack.Message = "configuration not reloaded, the old one stays in force"
		var ce *ConfigError
		if errors.As(msg.err, &ce) {
			ack.Problems = ce.Problems
		} else {
			ack.Problems = []string{msg.err.Error()}
		}
		m.emit(Event{Kind: EventReloadFailed, Reason: strings.Join(ack.Problems, "\n")})
		l.writeAck(ack)
		return msg.err
	}
	old := m.config()
	m.cfg.Store(msg.cfg)
	added, removed, changed := l.apply(msg.cfg)
	l.planOpenFiles()
	mt := m.matcher()
	for _, name := range added {
		l.resolve(l.progs[name], mt)
	}
	ack.OK = true
	ack.Message = fmt.Sprintf("%d programs (%d added, %d removed, %d changed)", len(l.progs), len(added), len(removed), len(changed))
	if running := runningRemoved(removed); len(running) > 0 {
		ack.Message += "; removed: " + strings.Join(running, ", ")
	}
	if old.StateDir != msg.cfg.StateDir {
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

// runningRemoved are the removed programs that run, as the reread says them
// ("extra (still running, pid 42)").
func runningRemoved(removed []string) []string {
	var out []string
	for _, r := range removed {
		if strings.Contains(r, "pid ") {
			out = append(out, r)
		}
	}
	return out
}

func (l *loop) writeAck(a statedir.ReloadAck) {
	l.lastAck = &a
	if err := l.m.state().WriteReloadAck(a); err != nil {
		l.ackOwed = &a
		l.fault("ack", "cannot record the reread acknowledgement: "+err.Error()+"; it is written when writes succeed again", err)
		return
	}
	l.ackOwed = nil
	l.cleared("ack", "the reread acknowledgement is written again")
}
