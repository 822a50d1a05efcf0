package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ReloadAck is usrsvcd's acknowledgement of a reread, recorded in the state
// directory (usrsvcd.reload.json); `usrsvcd reread` waits for its
// Generation to grow.
type ReloadAck struct {
	Version    int       `json:"version"`
	Generation int64     `json:"generation"`
	Time       time.Time `json:"time"`
	OK         bool      `json:"ok"`
	Message    string    `json:"message"`
	Problems   []string  `json:"problems,omitempty"`
}

func reloadAckPath(sd StateDir) string { return filepath.Join(string(sd), "usrsvcd.reload.json") }

// ReadReloadAck reads the last reread acknowledgement (zero when none).
func ReadReloadAck(sd StateDir) (ReloadAck, error) {
	var a ReloadAck
	err := readJSON(reloadAckPath(sd), &a)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return a, err
	}
	return a, nil
}

func readReloadAck(sd StateDir) ReloadAck {
	a, _ := ReadReloadAck(sd)
	return a
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
	cfg, err := LoadConfig(m.Config().Path)
	return m.reload(ctx, cfg, err)
}

func (m *Manager) reload(ctx context.Context, cfg *Config, loadErr error) error {
	if loadErr == nil && cfg == nil {
		loadErr = fmt.Errorf("%w: nil configuration", ErrInvalidConfig)
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
