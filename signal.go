package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/usrsvc/usrsvc/internal/proc"
	"golang.org/x/sys/unix"
)

// Signal sends sig to the named program's process, found as Status finds
// it. The process is re-checked (pid, start time and title) after a pidfd
// is opened on it, and the signal goes through that pidfd, so a reused pid
// is never signalled. Signal takes no lock and records nothing: usrsvcd
// treats what follows (an exit after SIGTERM, say) as it treats any exit.
// A program without a running process is ErrNotRunning.
func (m *Manager) Signal(ctx context.Context, name string, sig syscall.Signal) (*Status, error) {
	fail := func(st *Status, err error) (*Status, error) {
		return st, &ProgramError{Program: name, Op: "signal", Err: err}
	}
	pc, err := m.program(name)
	if err != nil {
		return fail(&Status{Program: name}, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(&Status{Program: name}, fmt.Errorf("%w: %w", ErrFailed, err))
	}
	st := &Status{Program: name}
	mt := m.matcher()
	found, err := mt.find(pc)
	if err != nil {
		return fail(st, err)
	}
	st.Warnings = found.Warnings
	notRunning := fmt.Errorf("%w: %s has no running process to signal", ErrNotRunning, name)
	p := found.Process
	if p == nil {
		return fail(st, notRunning)
	}
	pfd, _ := proc.PidfdOpen(p.PID) // nil: no pidfd here, kill(2) right after the check
	if pfd != nil {
		defer pfd.Close()
	}
	if same, err := mt.check(pc, p); err != nil {
		return fail(st, err)
	} else if !same {
		return fail(st, notRunning)
	}
	if pfd != nil {
		err = pfd.Signal(sig)
	} else {
		err = syscall.Kill(p.PID, sig)
	}
	if errors.Is(err, syscall.ESRCH) {
		return fail(st, notRunning)
	}
	if err != nil {
		return fail(st, fmt.Errorf("%w: sending %v to %d: %w", ErrPermission, sig, p.PID, err))
	}
	st.Running, st.Process, st.Message = true, p, "signalled"
	m.log.Info(fmt.Sprintf("sent %s to %s (pid %d)", unix.SignalName(sig), name, p.PID), "program", name, "pid", p.PID, "signal", int(sig))
	return st, nil
}

// reloadProgram sends pc its reload_signal (the program stays the same
// process) and records the reload, so that usrsvcd follows a program that
// re-executes itself on it (a new master, the old one exits) instead of
// restarting it.
func (m *Manager) reloadProgram(ctx context.Context, pc *Program, by origin) (*Status, error) {
	if pc.ReloadSignal == 0 {
		return &Status{Program: pc.Name}, fmt.Errorf("%w: %s has no reload_signal: set reload_signal = HUP (or the signal it reloads on) in %s:%d, or restart it",
			ErrInvalidAction, pc.Name, pc.File, pc.Line)
	}
	if by == byHand {
		if err := m.state().SetManual(pc.Name, string(ActionReload), m.now()); err != nil {
			return &Status{Program: pc.Name}, err
		}
	}
	st, err := m.Signal(ctx, pc.Name, pc.ReloadSignal)
	if err != nil {
		var pe *ProgramError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return st, err
	}
	st.Message = "reloaded (" + unix.SignalName(pc.ReloadSignal) + ")"
	m.emit(Event{Kind: EventReloaded, Program: pc.Name, Config: pc, PID: st.Process.PID, Reason: st.Message})
	return st, nil
}
