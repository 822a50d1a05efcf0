package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/proc"
)

// The operator's own commands are never taken for the program: with
// `tail -f tick`, `usrsvc tail -f tick`, `vim tick` and `supervisorctl …
// tail -f tick` running beside a program whose command is `tick`, status
// finds the program, a stop stops only it, and after a kill -9 of the
// program usrsvcd starts it again instead of adopting one of them.
func TestOperatorCommandsAreNotTheProgram(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	require.NoError(t, os.Mkdir(bin, 0o700))
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o700))
	}
	unique := fmt.Sprintf("%d%d", os.Getpid(), time.Now().UnixNano()%100000)
	write("tick", "while :; do sleep 1; done # "+unique)
	// Stand-ins for the operator's tools, with their command lines.
	write("usrsvc", "sleep 600")
	write("vim", "sleep 600")
	write("supervisorctl", "sleep 600")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tick"), []byte("a log named tick\n"), 0o600))

	w := newDWorld(t, dprogram("tick", "tick", "[[Env]]", "PATH = "+bin+":/usr/bin:/bin"))
	w.startDaemon()
	cfg, err := usrsvc.LoadConfig(w.cfg)
	require.NoError(t, err)
	m, err := usrsvc.NewManager(cfg, usrsvc.Options{Environ: []string{"PATH=/usr/bin:/bin"}})
	require.NoError(t, err)
	t.Cleanup(func() { // programs outlive usrsvcd by design: stop tick, whatever happened
		syscall.Kill(w.daemonPID(), syscall.SIGKILL)
		m.Do(context.Background(), usrsvc.ActionStop, "tick")
	})
	status := func() *usrsvc.Status {
		st, err := m.Do(context.Background(), usrsvc.ActionStatus, "tick")
		require.NoError(t, err)
		return st
	}
	var tick int
	waitFor(t, 15*time.Second, func() bool {
		st := status()
		if st.Running && st.State == usrsvc.StateRunning {
			tick = st.Process.PID
			return true
		}
		return false
	}, "tick started by usrsvcd")

	var others []*exec.Cmd
	run := func(path string, args ...string) {
		cmd := exec.Command(path, args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // it and its sleep, killed together
		require.NoError(t, cmd.Start())
		others = append(others, cmd)
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	}
	run("tail", "-f", "tick")
	run(filepath.Join(bin, "usrsvc"), "tail", "-f", "tick")
	run(filepath.Join(bin, "vim"), "tick")
	run(filepath.Join(bin, "supervisorctl"), "-u", "u", "-p", "secret", "tail", "-f", "tick")
	waitFor(t, 10*time.Second, func() bool {
		for _, c := range others {
			if p, err := proc.Default().Process(c.Process.Pid); err != nil || !strings.Contains(p.Title, "tick") {
				return false
			}
		}
		return true
	}, "the operator's commands run")

	st := status()
	require.True(t, st.Running)
	assert.Equal(t, tick, st.Process.PID, "the program, not one of the commands around it")
	assert.NotContains(t, st.Process.Title, "secret")

	require.NoError(t, syscall.Kill(tick, syscall.SIGKILL))
	var next int
	waitFor(t, 15*time.Second, func() bool {
		st := status()
		if st.Running && st.Process.PID != tick && st.State == usrsvc.StateRunning {
			next = st.Process.PID
			return true
		}
		return false
	}, "tick restarted by usrsvcd")
	p, err := proc.Default().Process(next)
	require.NoError(t, err)
	assert.Contains(t, p.Title, filepath.Join(bin, "tick"), "a new tick, not a command adopted")
	assert.NotContains(t, w.log(), "found by scan", "nothing adopted by a scan")

	_, err = m.Do(context.Background(), usrsvc.ActionStop, "tick")
	require.NoError(t, err)
	for _, c := range others {
		assert.True(t, pidAlive(c.Process.Pid), "%v is never signalled", c.Args)
	}
	waitFor(t, 10*time.Second, func() bool { return !pidAlive(next) }, "tick stopped")
}
