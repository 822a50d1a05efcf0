package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/statedir"
	"github.com/usrsvc/usrsvc/internal/version"
)

func usrsvcVersion() string { return version.Version }

// rereadWait bounds the wait for usrsvcd's acknowledgement of a reread.
const rereadWait = 10 * time.Second

// signalDaemonReread asks a running usrsvcd to reread its configuration
// (SIGUSR1, as usrsvcd reread does) and waits, bounded, for its
// acknowledgement. No usrsvcd running: a message and no error.
func signalDaemonReread(ctx context.Context, cfg *usrsvc.Config) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, rereadWait)
	defer cancel()
	pid, summary, err := statedir.Dir(cfg.StateDir).SignalReread(ctx, cfg.DaemonPidfile)
	switch {
	case errors.Is(err, usrsvc.ErrNotRunning):
		return "usrsvcd is not running", nil
	case err != nil:
		return "", err
	}
	return fmt.Sprintf("usrsvcd (pid %d) reread it: %s", pid, summary), nil
}

// diffConfigs lists the programs added, changed and removed from old to
// cfg, each sorted.
func diffConfigs(old, cfg *usrsvc.Config) (added, changed, removed []string) {
	for _, pc := range cfg.Programs {
		switch o := old.Program(pc.Name); {
		case o == nil:
			added = append(added, pc.Name)
		case !o.SameSettings(pc):
			changed = append(changed, pc.Name)
		}
	}
	for _, pc := range old.Programs {
		if cfg.Program(pc.Name) == nil {
			removed = append(removed, pc.Name)
		}
	}
	return added, changed, removed
}
