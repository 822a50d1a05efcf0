package web

import (
	"context"
	"fmt"
	"time"

	"github.com/usrsvc/usrsvc"
	"golang.org/x/sys/unix"
)

func version() string { return usrsvc.Version }

// rereadWait bounds the wait for usrsvcd's acknowledgement of a reread.
const rereadWait = 10 * time.Second

// signalDaemonReread asks a running usrsvcd to reread its configuration
// (SIGUSR1, as usrsvcd reread does) and waits, bounded, for its
// acknowledgement. No usrsvcd running: "" and no error.
func signalDaemonReread(ctx context.Context, cfg *usrsvc.Config) (string, error) {
	pid, running := usrsvc.DaemonPID(cfg)
	if !running || pid <= 0 {
		return "usrsvcd is not running", nil
	}
	sd := usrsvc.StateDir(cfg.Main.StateDir)
	before, _ := usrsvc.ReadReloadAck(sd)
	if err := unix.Kill(pid, unix.SIGUSR1); err != nil {
		return "", fmt.Errorf("cannot signal usrsvcd (pid %d): %v", pid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, rereadWait)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if ack, err := usrsvc.ReadReloadAck(sd); err == nil && ack.Generation > before.Generation {
			if !ack.OK {
				return "", fmt.Errorf("usrsvcd (pid %d) kept its old configuration: %s", pid, ack.Message)
			}
			return fmt.Sprintf("usrsvcd (pid %d) reread it: %s", pid, ack.Message), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("usrsvcd (pid %d) did not acknowledge the reread within %v", pid, rereadWait)
		case <-tick.C:
		}
	}
}

// diffConfigs lists the programs added, changed and removed from old to
// cfg, each sorted.
func diffConfigs(old, cfg *usrsvc.Config) (added, changed, removed []string) {
	for _, pc := range cfg.Programs {
		switch o := old.Program(pc.Name); {
		case o == nil:
			added = append(added, pc.Name)
		case !o.Equal(pc):
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
