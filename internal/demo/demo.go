// Package demo is usrsvc's no-setup demonstration (usrsvc --demo): in a
// temp directory, with an embedded config, it starts a few programs
// detached under a supervising daemon, kills one and shows it back in
// milliseconds, kills the daemon with SIGKILL and shows every program still
// running with the same pid, adopted by a new daemon, then cleans up.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/version"
)

// DaemonFlag is the hidden flag of the binary that runs the demo's daemon.
const DaemonFlag = "--demo-daemon"

// config is the embedded demo configuration; %[1]s is the temp directory,
// %[2]d a number that makes the titles unique to this run.
const config = `# usrsvc demo configuration (written by usrsvc --demo)
[Main]
pidfile = %[1]s/usrsvcd.pid
state_dir = %[1]s/state
usrsvcd_stdout = %[1]s/usrsvcd.log

[DefaultSettings:demo]
success_seconds = 0.5
term_to_kill_seconds = 2
maxrestarts = 5

# A plain long-running program.
[Program:web]
defaults = demo
command = sleep %[2]d1
pidfile = %[1]s/web.pid
stdout = %[1]s/web.log

# Another one, with its own environment.
[Program:worker]
defaults = demo
command = sleep %[2]d2
pidfile = %[1]s/worker.pid
stdout = %[1]s/worker.log
  [[Env]]
  QUEUE = emails

# A daemon that forks and exits: its parent exits at once, its child runs.
[Program:forker]
defaults = demo
useshell = true
command = (sleep %[2]d3 &)
proctitle_re = ^sleep %[2]d3$
pidfile = %[1]s/forker.pid
stdout = %[1]s/forker.log
`

// Run plays the demo, writing its narrative to w. self is the binary to run
// as the demo's daemon with DaemonFlag (normally os.Executable()).
func Run(ctx context.Context, w io.Writer, self string) error {
	dir, err := os.MkdirTemp("", "usrsvc-demo-")
	if err != nil {
		return err
	}
	d := &demo{w: w, dir: dir, self: self, cfgPath: filepath.Join(dir, "usrsvc.cfg")}
	defer d.cleanup()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return d.play(ctx)
}

type demo struct {
	w       io.Writer
	dir     string
	self    string
	cfgPath string
	cfg     *usrsvc.Config
	m       *usrsvc.Manager
	daemon  *exec.Cmd
}

func (d *demo) say(format string, a ...any) { fmt.Fprintf(d.w, format+"\n", a...) }

func (d *demo) step(n int, title string) { d.say("\n%d. %s", n, title) }

func (d *demo) play(ctx context.Context) error {
	base := 86400 + os.Getpid()%9000*10
	if err := os.WriteFile(d.cfgPath, []byte(fmt.Sprintf(config, d.dir, base)), 0o600); err != nil {
		return err
	}
	cfg, err := usrsvc.LoadConfig(d.cfgPath)
	if err != nil {
		return err
	}
	d.cfg = cfg
	d.m, err = usrsvc.NewManager(cfg, usrsvc.Options{})
	if err != nil {
		return err
	}
	d.say("usrsvc %s demo — a service manager that is never its programs' parent.", version.Version)
	d.say("Working in %s with a config of 3 programs (web, worker, forker).", d.dir)

	d.step(1, "Start the supervising daemon (usrsvcd). It autostarts every program, detached:")
	t0 := time.Now()
	if err := d.startDaemon(); err != nil {
		return err
	}
	before, err := d.waitAll(ctx, 15*time.Second)
	if err != nil {
		return err
	}
	d.say("   daemon pid %d, all programs up and past their success window (0.5 s) in %v", d.daemon.Process.Pid, time.Since(t0).Round(time.Millisecond))
	time.Sleep(100 * time.Millisecond) // the launchers exit just after reporting
	d.table(ctx)

	d.step(2, "Kill web with SIGKILL, as a crash would:")
	victim := before["web"]
	killed := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		return err
	}
	newPID, err := d.waitNew(ctx, "web", victim, 15*time.Second)
	if err != nil {
		return err
	}
	d.say("   web %d killed → new web %d running %v later (exit seen through a pidfd, not by polling)",
		victim, newPID, time.Since(killed).Round(100*time.Microsecond))
	before["web"] = newPID

	d.step(3, "Kill the daemon itself with SIGKILL:")
	dpid := d.daemon.Process.Pid
	d.daemon.Process.Kill()
	d.daemon.Wait()
	time.Sleep(200 * time.Millisecond)
	after, err := d.pids(ctx, false)
	if err != nil {
		return err
	}
	d.say("   usrsvcd %d is gone; the programs do not care:", dpid)
	for _, name := range []string{"forker", "web", "worker"} {
		mark := "same pid ✓"
		if after[name] != before[name] {
			mark = "CHANGED ✗"
		}
		d.say("   %-7s pid %-7d %s", name, after[name], mark)
	}

	d.step(4, "Start a new daemon: it adopts what runs, restarting nothing:")
	if err := d.startDaemon(); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	adopted, err := d.waitAll(ctx, 10*time.Second)
	if err != nil {
		return err
	}
	same := true
	for name, pid := range before {
		if adopted[name] != pid {
			same = false
		}
	}
	d.say("   daemon pid %d; programs keep their pids: %v", d.daemon.Process.Pid, yes(same))
	d.showLog("adopted")

	d.step(5, "Clean up: stop the daemon (programs keep running), then stop every program:")
	d.stopDaemon()
	for _, r := range d.m.DoAll(ctx, usrsvc.ActionStop, nil, true) {
		status := "stopped"
		if r.Err != nil {
			status = r.Err.Error()
		} else if r.Status != nil {
			status = r.Status.Message
		}
		d.say("   %-7s %s", r.Program, status)
	}
	d.say("\nThat is the no-parent model: usrsvcd can be killed, upgraded or restarted and no")
	d.say("program notices. Next: README.md and docs/, or `usrsvcd checkconfig` on your own config.")
	return nil
}

func yes(b bool) string {
	if b {
		return "yes ✓"
	}
	return "NO ✗"
}

func (d *demo) startDaemon() error {
	cmd := exec.Command(d.self, DaemonFlag, d.cfgPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = d.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the demo daemon: %w", err)
	}
	d.daemon = cmd
	return nil
}

func (d *demo) stopDaemon() {
	if d.daemon == nil || d.daemon.Process == nil {
		return
	}
	d.daemon.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.daemon.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		d.daemon.Process.Kill()
		<-done
	}
	d.daemon = nil
}

// pids returns the pid of every running program; supervised: only those
// the daemon has recorded as running (past their success window).
func (d *demo) pids(ctx context.Context, supervised bool) (map[string]int, error) {
	out := map[string]int{}
	for _, r := range d.m.DoAll(ctx, usrsvc.ActionStatus, nil, false) {
		if r.Err != nil {
			return nil, r.Err
		}
		st := r.Status
		if st.Running && (!supervised || st.State == usrsvc.StateRunning) {
			out[r.Program] = st.Process.PID
		}
	}
	return out, nil
}

// waitAll waits until the daemon supervises every program as running.
func (d *demo) waitAll(ctx context.Context, timeout time.Duration) (map[string]int, error) {
	deadline := time.Now().Add(timeout)
	for {
		pids, err := d.pids(ctx, true)
		if err == nil && len(pids) == len(d.cfg.Programs) {
			return pids, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the programs did not all start within %v; see %s", timeout, filepath.Join(d.dir, "usrsvcd.log"))
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitNew polls /proc (every 1 ms) for a new live process of the program.
func (d *demo) waitNew(ctx context.Context, name string, old int, timeout time.Duration) (int, error) {
	title := strings.Join(d.cfg.Program(name).Args, " ")
	fs := proc.Default()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		snap, err := fs.Snapshot(os.Getuid())
		if err == nil {
			for _, p := range snap.Procs {
				if p.PID != old && !p.Zombie() && p.Title == title {
					return p.PID, nil
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0, errors.New(name + " did not come back")
}

func (d *demo) table(ctx context.Context) {
	tw := tabwriter.NewWriter(d.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   PROGRAM\tPID\tPARENT\tSESSION\tCOMMAND")
	for _, r := range d.m.DoAll(ctx, usrsvc.ActionStatus, nil, false) {
		if r.Status == nil || !r.Status.Running {
			fmt.Fprintf(tw, "   %s\t-\t-\t-\tnot running\n", r.Program)
			continue
		}
		p := r.Status.Process
		parent, session := "?", "?"
		if q, err := proc.Default().Stat(p.PID); err == nil {
			parent = fmt.Sprint(q.PPID)
			if q.PPID == 1 {
				parent = "1 (init)"
			}
			session = fmt.Sprint(q.SID)
		}
		fmt.Fprintf(tw, "   %s\t%d\t%s\t%s\t%s\n", r.Program, p.PID, parent, session, p.Title)
	}
	tw.Flush()
	d.say("   Their parent is init (or your session's subreaper), never usrsvc or usrsvcd.")
}

func (d *demo) showLog(event string) {
	data, _ := os.ReadFile(filepath.Join(d.dir, "usrsvcd.log"))
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "event="+event) {
			if i := strings.Index(line, "msg="); i >= 0 {
				d.say("   log: %s", line[i:])
			}
		}
	}
}

func (d *demo) cleanup() {
	d.stopDaemon()
	if d.m != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		d.m.DoAll(ctx, usrsvc.ActionStop, nil, true)
		cancel()
	}
	if os.Getenv("USRSVC_DEMO_KEEP") == "" {
		os.RemoveAll(d.dir)
	}
}

// Daemon runs the demo's daemon on cfgPath until SIGTERM: the supervising
// loop, logging to usrsvcd_stdout.
func Daemon(cfgPath string) error {
	cfg, err := usrsvc.LoadConfig(cfgPath)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(cfg.DaemonStdout, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	m, err := usrsvc.NewManager(cfg, usrsvc.Options{Logger: newLogger(logf)})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return m.Run(ctx)
}
