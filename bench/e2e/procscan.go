package main

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/proc"
	"golang.org/x/sys/unix"
)

type pinfo struct {
	pid, ppid int
	title     string
	start     uint64
	state     byte
}

func contains(tok string) func(string) bool {
	return func(t string) bool { return strings.Contains(t, tok) }
}

// scan lists our (same uid) live, non-zombie processes whose title matches:
// one readdir of /proc, one read of cmdline per process, one of stat per match.
// It is the observer's poll, so it reuses one buffer and skips os.ReadFile.
func scan(match func(string) bool) []pinfo {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	uid, self := os.Getuid(), os.Getpid()
	buf := make([]byte, 4096)
	var out []pinfo
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self { // our own title may hold the token
			continue
		}
		b := readInto(buf, "/proc/"+name+"/cmdline")
		if len(b) == 0 {
			continue // kernel thread, zombie, or gone
		}
		title := strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
		if !match(title) {
			continue
		}
		p, err := proc.Default().Stat(pid)
		if err != nil || p.Zombie() || p.UID != uid {
			continue
		}
		out = append(out, pinfo{pid: pid, ppid: p.PPID, title: title, start: p.StartTicks, state: p.State})
	}
	slices.SortFunc(out, func(a, b pinfo) int { return strings.Compare(a.title, b.title)*2 + cmpInt(a.pid, b.pid) })
	return out
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func readInto(buf []byte, path string) []byte {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, buf)
	if err != nil || n <= 0 {
		return nil
	}
	return buf[:n]
}

// killPid sends SIGKILL through a pidfd, after re-checking that the pid still
// carries a title with tok (so a reused pid is never hit).
func killPid(pid int, match func(string) bool) bool {
	pfd, err := proc.PidfdOpen(pid)
	if err != nil {
		return false
	}
	defer pfd.Close()
	p, err := proc.Default().Process(pid)
	if err != nil || p.Zombie() || !match(p.Title) {
		return false
	}
	return pfd.Signal(syscall.SIGKILL) == nil
}

// killTokens kills every process of ours (but us and our ancestors) whose
// title contains one of toks, until none is left (5 s at most).
func killTokens(toks []string) int {
	skip := map[int]bool{}
	for pid := os.Getpid(); pid > 1; {
		skip[pid] = true
		p, err := proc.Default().Stat(pid)
		if err != nil {
			break
		}
		pid = p.PPID
	}
	match := func(t string) bool {
		for _, tok := range toks {
			if tok != "" && strings.Contains(t, tok) {
				return true
			}
		}
		return false
	}
	killed := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		left := 0
		for _, p := range scan(match) {
			if skip[p.pid] {
				continue
			}
			left++
			if killPid(p.pid, match) {
				killed++
			}
		}
		if left == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return killed
}
