package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPU accounting of a command and everything it starts, also what outlives
// it (a launcher that exits after its caller, a detached program): the
// command runs in a cgroup of its own and the cgroup's CPU counter is read.
// cgroup v1 cpuacct (cpuacct.usage, ns) where it is mounted, else cgroup v2
// (cpu.stat usage_usec). Needs write access to the cgroup tree (root); the
// figures are reported as unavailable otherwise.
//
//	e2e -cgnew                 prints the path of a new, empty cgroup
//	e2e -joincg PATH -- CMD    moves itself into PATH, then execs CMD
//	e2e -cgread PATH           prints "CG cpu_ms=..."
//	e2e -cgdel PATH            moves what is left in PATH back out, removes it

// cgroupBase returns the directory new cgroups are made in (the one this
// process is in) and whether it is cgroup v2.
func cgroupBase() (dir string, v2 bool, err error) {
	own := map[string]string{} // controller list → path, from /proc/self/cgroup
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 {
			own[parts[1]] = parts[2]
		}
	}
	for _, c := range []string{"cpuacct", "cpu,cpuacct"} {
		root := "/sys/fs/cgroup/" + c
		if _, err := os.Stat(filepath.Join(root, "cpuacct.usage")); err == nil {
			return filepath.Join(root, own[c]), false, nil
		}
	}
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err == nil {
			if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
				return filepath.Join(root, own[""]), true, nil
			}
		}
	}
	return "", false, errors.New("no cpuacct (v1) or v2 cgroup hierarchy mounted")
}

// cgNew creates an empty cgroup for one measurement.
func cgNew() (string, error) {
	base, _, err := cgroupBase()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, fmt.Sprintf("usrsvc-bench.%d.%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot create a cgroup for CPU accounting (%v): run as root", err)
	}
	return dir, nil
}

// cgJoinExec moves this process into dir and execs args: everything the
// command does from its exec on is counted.
func cgJoinExec(dir string, args []string) error {
	if len(args) == 0 {
		return errors.New("no command")
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		return err
	}
	path, err := lookPath(args[0])
	if err != nil {
		return err
	}
	return syscall.Exec(path, args, os.Environ())
}

// cgCPU is the CPU time used so far by everything that ran in dir.
func cgCPU(dir string) (time.Duration, error) {
	if b, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage")); err == nil {
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return time.Duration(n), err
	}
	b, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Duration(n) * time.Microsecond, err
		}
	}
	return 0, fmt.Errorf("%s/cpu.stat: no usage_usec", dir)
}

// cgDel moves the processes still in dir to its parent and removes it
// (5 s at most: a process may fork while it is moved).
func cgDel(dir string) error {
	if !strings.Contains(filepath.Base(dir), "usrsvc-bench.") {
		return fmt.Errorf("%s is not a cgroup of ours", dir)
	}
	parent := filepath.Join(filepath.Dir(dir), "cgroup.procs")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		pids := strings.Fields(string(b))
		for _, pid := range pids {
			_ = os.WriteFile(parent, []byte(pid), 0)
		}
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lookPath(file string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(d, file)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH", file)
}

// schedSum is the CPU time (schedstat) used so far by our live processes
// whose title contains tok.
func schedSum(tok string) (total time.Duration, n int) {
	for _, p := range scan(contains(tok)) {
		if d, err := readSchedstat(fmt.Sprintf("/proc/%d/schedstat", p.pid)); err == nil {
			total += d
			n++
		}
	}
	return total, n
}

func readSchedstat(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: empty", path)
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(n), err
}
