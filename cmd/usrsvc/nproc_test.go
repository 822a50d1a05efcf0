package main

import (
	"bufio"
	"encoding/json"
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

	"github.com/usrsvc/usrsvc/internal/proc"
)

// Near the account's process limit (RLIMIT_NPROC), usrsvc -P start all
// ends with a JSON record per program, each started or failed with code 11
// (TRY_AGAIN) saying why — never with the Go runtime's "fatal error:
// newosproc" (a thread it could not create) and no JSON. Run as uid 65534
// when the tests run as root, whom the limit does not hold.
func TestParallelStartAtProcessLimit(t *testing.T) {
	t.Parallel()
	uid := os.Getuid()
	if uid == 0 {
		uid = 65534
	}
	dir, err := os.MkdirTemp("", "usrsvc-nproc")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	// usrsvc as installed (static, no race detector: the test binary's
	// runtime needs threads of its own), where the account can run it.
	bin := filepath.Join(dir, "usrsvc")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	token := fmt.Sprintf("86400.%d%d", os.Getpid(), time.Now().UnixNano()%1000000)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "[Main]\npidfile = %s/usrsvcd.pid\nstate_dir = %s/state\n", dir, dir)
	const n = 30
	for i := range n {
		fmt.Fprintf(&cfg, "\n[Program:p%02d]\ncommand = /bin/sleep %s%02d\nsuccess_seconds = 0.3\n", i, token, i)
	}
	cfgPath := filepath.Join(dir, "usrsvc.cfg")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg.String()), 0o600))
	if os.Getuid() == 0 {
		require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, uid)
		}))
	}
	t.Cleanup(func() {
		// Whatever started: killed by pid.
		snap, err := proc.Default().Snapshot(uid)
		if err != nil {
			return
		}
		for _, p := range snap.Procs {
			if strings.Contains(p.Title, token) {
				syscall.Kill(p.PID, syscall.SIGKILL)
			}
		}
	})

	// The limit: the account's tasks now, plus a few.
	tasks := 0
	if snap, err := proc.Default().Snapshot(uid); err == nil {
		for _, p := range snap.Procs {
			tasks += max(p.Threads, 1)
		}
	}
	limit := tasks + 12
	cmd := exec.Command("/bin/bash", "-c", fmt.Sprintf("ulimit -u %d && exec %s --config %s --json -P start all", limit, bin, cfgPath))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if os.Getuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "some starts fail at the limit: %s", stderr.String())
	assert.Equal(t, 1, ee.ExitCode(), "%.400s", stderr.String())
	// The launchers may die of the limit (their warnings say so); usrsvc
	// itself must not: no runtime stack of its own.
	crashed := strings.Contains(stderr.String(), "runtime stack:") || strings.Contains(stderr.String(), "goroutine 1 [")
	assert.False(t, crashed, "usrsvc crashed: %.400s", stderr.String())
	codes := map[float64]int{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), sc.Text())
		lines++
		code, _ := rec["code"].(float64)
		codes[code]++
		if code != 0 && code != 11 {
			t.Logf("%s", sc.Text())
		}
		if code == 11 {
			assert.Contains(t, rec["message"], "ulimit -u", rec["message"])
		}
	}
	assert.Equal(t, n, lines, "one record per program")
	assert.Equal(t, n, codes[0]+codes[11], "each started or TRY_AGAIN: %v", codes)
	assert.Positive(t, codes[11], "the limit was reached")
}
