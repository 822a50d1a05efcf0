package proc_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// benchProcs is how many processes BenchmarkSnapshot adds to the machine.
const benchProcs = 1000

// spawnSleepers starts n /bin/sleep processes as our children (the cheapest
// live process: ~1 MB, mostly shared) with a token in their argv[0], and
// registers a cleanup that kills each by pid and reaps it, whatever happens
// to the benchmark. They also end by themselves after 10 minutes.
func spawnSleepers(b *testing.B, n int) string {
	b.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		b.Skipf("no sleep: %v", err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	token := "tp-bench-" + hex.EncodeToString(rnd[:])
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	fd := devnull.Fd()
	attr := &syscall.ProcAttr{Files: []uintptr{fd, fd, fd}}
	var pids []int
	b.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		for _, pid := range pids {
			var ws syscall.WaitStatus
			for {
				_, err := syscall.Wait4(pid, &ws, 0, nil)
				if err != syscall.EINTR {
					break
				}
			}
		}
	})
	for range n {
		pid, err := syscall.ForkExec(sleep, []string{"sleep-" + token, "600"}, attr)
		if err != nil {
			b.Fatalf("spawned %d of %d: %v", len(pids), n, err)
		}
		pids = append(pids, pid)
	}
	// Wait until they have all exec'd (their title carries the token).
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := proc.Default().Snapshot(os.Getuid())
		if err != nil {
			b.Fatal(err)
		}
		ready := 0
		for _, pid := range pids {
			if p := s.Procs[pid]; p != nil && strings.HasPrefix(p.Title, "sleep-"+token) {
				ready++
			}
		}
		if ready == n {
			return token
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d sleepers running", ready, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procEntries counts the /proc/PID directories: every process on the machine.
func procEntries(b *testing.B) int {
	s, err := proc.Default().Snapshot(-1)
	if err != nil {
		b.Fatal(err)
	}
	return len(s.Procs)
}

// BenchmarkSnapshot measures one Snapshot over a machine with benchProcs
// more processes of ours:
//
//	own       Snapshot(own uid): most processes are ours, all are read
//	uid65534  Snapshot(65534): as root, most processes are someone else's
//	          and skipped after one stat (run as uid 65534 it equals own)
//	all       Snapshot(-1): every process read
//	ps        `ps -u UID -o pid=,ppid=,args=` over the same tree, for the ratio
//
// ns/ownproc is the time per process returned, ns/pid per /proc entry.
func BenchmarkSnapshot(b *testing.B) {
	if testing.Short() {
		b.Skip("spawns 1000 processes")
	}
	spawnSleepers(b, benchProcs)
	uid := os.Getuid()
	fs := proc.Default()
	snap := func(name string, u int) {
		b.Run(name, func(b *testing.B) {
			entries := procEntries(b)
			var n int
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s, err := fs.Snapshot(u)
				if err != nil {
					b.Fatal(err)
				}
				n = len(s.Procs)
			}
			report(b, n, entries)
		})
	}
	snap("own", uid)
	snap("uid65534", 65534)
	snap("all", -1)
	b.Run("ps", func(b *testing.B) {
		ps, err := exec.LookPath("ps")
		if err != nil {
			b.Skipf("no ps: %v", err)
		}
		entries := procEntries(b)
		var n int
		b.ResetTimer()
		for b.Loop() {
			out, err := exec.Command(ps, "-u", strconv.Itoa(uid), "-o", "pid=,ppid=,args=").Output()
			if err != nil {
				b.Fatal(err)
			}
			n = bytes.Count(out, []byte{'\n'})
		}
		report(b, n, entries)
	})
}

func report(b *testing.B, procs, entries int) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(float64(procs), "procs")
	b.ReportMetric(float64(entries), "pids")
	if procs > 0 {
		b.ReportMetric(ns/float64(procs), "ns/ownproc")
	}
	if entries > 0 {
		b.ReportMetric(ns/float64(entries), "ns/pid")
	}
}
