package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/usrsvc/usrsvc/internal/testproc"
	"github.com/usrsvc/usrsvc/internal/xmlrpc"
)

// TestAttackFigures measures what the attacks of SECURITY.md cost a real
// usrsvcweb process: peak memory under a system.multicall of log reads,
// log bytes written under a failed-login flood, CPU under bcrypt guessing,
// and connections held by idle clients. It only runs when asked, as it
// loads the machine for about a minute:
//
//	USRSVC_ATTACK=1 go test -run TestAttackFigures -v ./cmd/usrsvcweb
//
// USRSVCWEB_BIN=/path/to/usrsvcweb measures another build (the figures
// "before" in SECURITY.md come from the build before the fixes).
func TestAttackFigures(t *testing.T) {
	if os.Getenv("USRSVC_ATTACK") != "1" {
		t.Skip("measures attacks for SECURITY.md: USRSVC_ATTACK=1 to run it")
	}
	for _, calls := range []int{64, 100, 2000} {
		t.Run(fmt.Sprintf("multicall-%d", calls), func(t *testing.T) { attackMulticall(t, calls, 1) })
	}
	t.Run("multicall-7x16-clients", func(t *testing.T) { attackMulticall(t, 7, 16) })
	t.Run("failed-login-flood", func(t *testing.T) { attackLoginFlood(t, 1) })
	t.Run("failed-login-flood-64-addresses", func(t *testing.T) { attackLoginFlood(t, 64) })
	t.Run("bcrypt-guessing", attackBcrypt)
	t.Run("idle-connections", attackIdleConns)
}

// attackTarget is a usrsvcweb process on TCP with a password.
type attackTarget struct {
	cmd  *exec.Cmd
	addr string
	dir  string
	logs *countingLog
}

// countingLog keeps the first 64 KiB written and counts every byte.
type countingLog struct {
	mu   sync.Mutex
	head []byte
	n    int
}

func (c *countingLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += len(p)
	if room := 64<<10 - len(c.head); room > 0 {
		c.head = append(c.head, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *countingLog) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *countingLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.head)
}

const attackPassword = "correct horse battery"

func startTarget(t *testing.T, password string) *attackTarget {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.log")
	line := strings.Repeat("x", 1023) + "\n"
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat(line, 1024)), 0o600))
	port := freePort(t)
	cfg := fmt.Sprintf("[Main]\npidfile = %[1]s/usrsvcd.pid\nstate_dir = %[1]s/state\n[Web]\nlisten = 127.0.0.1:%[2]d\n"+
		"username = admin\npassword = %[3]s\n[Program:big]\ncommand = /bin/sleep 1000\npidfile = %[1]s/big.pid\nstdout = %[1]s/big.log\n",
		dir, port, password)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "usrsvc.cfg"), []byte(cfg), 0o600))
	bin := os.Getenv("USRSVCWEB_BIN")
	var cmd *exec.Cmd
	if bin == "" {
		exe, err := os.Executable()
		require.NoError(t, err)
		cmd = exec.Command(exe, "--config", filepath.Join(dir, "usrsvc.cfg"))
		cmd.Env = append(os.Environ(), asMain+"=1")
	} else {
		cmd = exec.Command(bin, "--config", filepath.Join(dir, "usrsvc.cfg"))
	}
	logs := &countingLog{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	tg := &attackTarget{cmd: cmd, addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, logs: logs}
	testproc.WaitFor(t, 30*time.Second, func() bool { return strings.Contains(logs.String(), "usrsvcweb listening") },
		"usrsvcweb listens")
	return tg
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// status reads a field of /proc/PID/status, in kB.
func (tg *attackTarget) statusKB(field string) int64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", tg.cmd.Process.Pid))
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return -1
}

// cpu is the process's user + system CPU time.
func (tg *attackTarget) cpu() time.Duration {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", tg.cmd.Process.Pid))
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / 100
}

func (tg *attackTarget) fds() int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", tg.cmd.Process.Pid))
	return len(ents)
}

func (tg *attackTarget) post(t *testing.T, user, pw string, body []byte) (int, int64) {
	req, err := http.NewRequest("POST", "http://"+tg.addr+"/RPC2", bytes.NewReader(body))
	require.NoError(t, err)
	req.SetBasicAuth(user, pw)
	req.Header.Set("Content-Type", "text/xml")
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return -1, 0
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, n
}

func attackMulticall(t *testing.T, calls, clients int) {
	tg := startTarget(t, attackPassword)
	list := make([]any, calls)
	for i := range list {
		list[i] = map[string]any{"methodName": "supervisor.readProcessLog", "params": []any{"big", int64(0), int64(0)}}
	}
	var body bytes.Buffer
	require.NoError(t, xmlrpc.EncodeCall(&body, "system.multicall", list))
	before := tg.statusKB("VmHWM")
	t0 := time.Now()
	var wg sync.WaitGroup
	var code atomic.Int64
	var n atomic.Int64
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, k := tg.post(t, "admin", attackPassword, body.Bytes())
			code.Store(int64(c))
			n.Add(k)
		}()
	}
	wg.Wait()
	took := time.Since(t0)
	peak := tg.statusKB("VmHWM")
	t.Logf("FIGURE multicall calls=%d clients=%d: HTTP %d, %d response bytes in %v; peak RSS %d MiB (idle %d MiB)",
		calls, clients, code.Load(), n.Load(), took.Round(time.Millisecond), peak>>10, before>>10)
	ok, _ := tg.post(t, "admin", attackPassword, []byte(`<?xml version="1.0"?><methodCall><methodName>supervisor.getAPIVersion</methodName></methodCall>`))
	t.Logf("FIGURE multicall calls=%d: a request after it: HTTP %d", calls, ok)
}

// attackLoginFlood sends wrong passwords from 8 clients for 10 s, from
// addresses source addresses (127.0.0.10 on).
func attackLoginFlood(t *testing.T, addresses int) {
	tg := startTarget(t, attackPassword)
	testproc.WaitFor(t, 10*time.Second, func() bool { return tg.logs.Len() > 0 }, "the start line")
	time.Sleep(200 * time.Millisecond)
	start := tg.logs.Len()
	const d = 10 * time.Second
	var reqs atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	user := strings.Repeat("u", 4000)
	var next atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				ip := net.IPv4(127, 0, 0, byte(10+next.Add(1)%int64(addresses)))
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
				c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+tg.addr+"/"+strings.Repeat("p", 2000), nil)
				req.SetBasicAuth(user, "wrong")
				if resp, err := c.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					reqs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	n := tg.logs.Len() - start
	t.Logf("FIGURE failed-login flood: %d requests in %v from 8 clients on %d addresses; %d log bytes = %d bytes/s",
		reqs.Load(), d, addresses, n, int64(float64(n)/d.Seconds()))
}

func attackBcrypt(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte(attackPassword), 12)
	require.NoError(t, err)
	tg := startTarget(t, string(hash))
	const d = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cpu0, t0 := tg.cpu(), time.Now()
	var wg sync.WaitGroup
	var reqs atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 30 * time.Second}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+tg.addr+"/", nil)
				req.SetBasicAuth("admin", "wrong guess")
				if resp, err := c.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					reqs.Add(1)
				}
			}
		}()
	}
	// A correct login during the attack, from another address.
	time.Sleep(3 * time.Second)
	l0 := time.Now()
	req, _ := http.NewRequest("GET", "http://"+tg.addr+"/api/v1/programs", nil)
	req.SetBasicAuth("admin", attackPassword)
	other := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	resp, err := (&http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: other.DialContext}}).Do(req)
	good := -1
	if err == nil {
		good = resp.StatusCode
		resp.Body.Close()
	}
	lt := time.Since(l0)
	wg.Wait()
	cpu, wall := tg.cpu()-cpu0, time.Since(t0)
	t.Logf("FIGURE bcrypt (cost 12) guessing by 8 clients for %v: %d answers; usrsvcweb used %v of CPU = %.0f%% of one core; a correct login meanwhile: HTTP %d in %v",
		d, reqs.Load(), cpu.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(), good, lt.Round(time.Millisecond))
}

func attackIdleConns(t *testing.T) {
	tg := startTarget(t, attackPassword)
	fds0 := tg.fds()
	var conns []net.Conn
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 2 * time.Second}
	for range 1000 {
		c, err := d.Dial("tcp", tg.addr)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(time.Second)
	held := tg.fds() - fds0
	t0 := time.Now()
	req, _ := http.NewRequest("GET", "http://"+tg.addr+"/api/v1/programs", nil)
	req.SetBasicAuth("admin", attackPassword)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	code := -1
	if err == nil {
		code = resp.StatusCode
		resp.Body.Close()
	}
	t.Logf("FIGURE idle connections: %d opened from 127.0.0.2, %d held by usrsvcweb after 1 s; a legitimate request: HTTP %d in %v",
		len(conns), held, code, time.Since(t0).Round(time.Millisecond))
	time.Sleep(12 * time.Second)
	t.Logf("FIGURE idle connections: %d still held after 13 s", tg.fds()-fds0)
}
