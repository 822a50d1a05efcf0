package web

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/statedir"
	"golang.org/x/sys/unix"
)

// The states a program is shown in (the page, the JSON API, the metrics'
// usrsvc_program_state).
const (
	stateRunning       = "running"
	stateStarting      = "starting"
	stateBackoff       = "backoff"
	stateGaveUp        = "gave-up"
	stateStoppedByHand = "stopped-by-hand"
	stateExited        = "exited"
	stateStopped       = "stopped"
	stateDisabled      = "disabled"
	// stateRemoved: removed from the configuration, still running,
	// supervised by no one (shown until it ends; no action applies).
	stateRemoved = "removed"
	stateUnknown = "unknown"
)

// A program's health, as usrsvcd records it for a program with health
// checks (http_check, tcp_check, exec_check).
const (
	healthHealthy   = "healthy"
	healthUnhealthy = "unhealthy"
	healthUnknown   = "unknown" // no check has run yet on this process
)

// programView is what the page, the JSON API, the live updates and the
// metrics show of one program: its status as read now, with usrsvcd's
// record and the process's CPU and memory use. It is the JSON object of
// GET /api/v1/programs/NAME; absent fields are unknown or do not apply.
type programView struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	Running bool   `json:"running"`
	Enabled bool   `json:"enabled"`
	// StoppedByHand: stopped with usrsvc stop (or this server's stop);
	// usrsvcd leaves it stopped until a start.
	StoppedByHand bool     `json:"stopped_by_hand"`
	PID           int      `json:"pid,omitempty"`
	StartedAt     string   `json:"started_at,omitempty"` // RFC 3339
	Started       int64    `json:"started_unix,omitempty"`
	Uptime        float64  `json:"uptime_seconds,omitempty"`
	Cmdline       string   `json:"cmdline,omitempty"`
	Restarts      int      `json:"restarts"`
	LastExit      *exitRec `json:"last_exit,omitempty"`
	// CPUPercent is the share of one core used since the previous reading
	// (live updates), or since the process started (the first reading).
	CPUPercent   *float64 `json:"cpu_percent,omitempty"`
	CPUSeconds   *float64 `json:"cpu_seconds,omitempty"`
	RSSBytes     int64    `json:"rss_bytes,omitempty"`
	PrivateBytes int64    `json:"private_bytes,omitempty"`
	Monitors     []string `json:"monitors,omitempty"`
	// Reason is usrsvcd's last word on the program (why it restarted or
	// gave up).
	Reason   string   `json:"reason,omitempty"`
	Message  string   `json:"message,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Error    string   `json:"error,omitempty"`
	// NextTry is when usrsvcd tries again a program in backoff (RFC
	// 3339).
	NextTry string `json:"next_try,omitempty"`
	// Health is healthy, unhealthy or unknown (no check ran yet) for a
	// running program with health checks that usrsvcd supervises; absent
	// otherwise. HealthReason and HealthAt tell its last failed check
	// (with how many failed in a row), HealthFailures how many failed in a
	// row.
	Health         string `json:"health,omitempty"`
	HealthReason   string `json:"health_reason,omitempty"`
	HealthAt       string `json:"health_at,omitempty"` // RFC 3339
	HealthFailures int    `json:"health_failures,omitempty"`
	// ReloadSignal is the program's reload_signal (HUP, USR1, ...): it
	// can be reloaded (POST /api/v1/programs/NAME/reload).
	ReloadSignal string `json:"reload_signal,omitempty"`
	// Self is true for the program that is this usrsvcweb: stop all
	// skips it, and the page offers no Stop for it.
	Self bool `json:"self,omitempty"`

	// startTicks identifies the process with PID (for the watcher's
	// pidfds and CPU deltas).
	startTicks uint64
}

// exitRec is how a program last ended, as usrsvcd saw it.
type exitRec struct {
	Time        string `json:"time"`
	Status      *int   `json:"status,omitempty"`
	Signal      *int   `json:"signal,omitempty"`
	Description string `json:"description"`
	// code is the status, or 128 + the signal (the shell's convention), for
	// the metrics.
	code int
}

// daemonView is usrsvcd's status: whether it runs, since when, and how
// its last reread went.
type daemonView struct {
	Running   bool    `json:"running"`
	PID       int     `json:"pid,omitempty"`
	StartedAt string  `json:"started_at,omitempty"`
	Started   int64   `json:"started_unix,omitempty"`
	Uptime    float64 `json:"uptime_seconds,omitempty"`
	// LastReread is usrsvcd's acknowledgement of its last reread; nil when
	// it recorded none.
	LastReread *rereadView `json:"last_reread,omitempty"`
}

// rereadView is the outcome of a reread.
type rereadView struct {
	Time     string   `json:"time"`
	Unix     int64    `json:"unix"`
	OK       bool     `json:"ok"`
	Message  string   `json:"message,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// overview is every program and the daemon, read at one time.
type overview struct {
	Time     time.Time      `json:"-"`
	Now      string         `json:"time"` // RFC 3339, the server's clock at the reading
	Daemon   daemonView     `json:"daemon"`
	Programs []*programView `json:"programs"` // in name order
	// Config is the main config file in force.
	Config   string `json:"config"`
	ReadOnly bool   `json:"read_only"`
	Version  string `json:"version"`
}

// reader reads overviews, sharing one reading between concurrent callers
// (a page load, a scrape and the watcher at the same moment cost one
// reading), and remembers each running process's CPU time so that the
// next reading shows the CPU share since this one.
type reader struct {
	h  *Handler
	fs proc.FS

	mu       sync.Mutex
	inflight *readCall
	last     *overview
	// gen counts the changes made through this server: a reading begun
	// before one is not reused after it.
	gen     uint64
	lastGen uint64
	// cpu is the CPU time of each program's process at the last reading.
	cpu map[string]cpuSample
	// ackSeen is the generation of usrsvcd's reread acknowledgement at the
	// last reading (ackKnown: read once); adopting is set while the
	// configuration usrsvcd reread is being put in force here.
	ackSeen  int64
	ackKnown bool
	adopting atomic.Bool
}

type readCall struct {
	done chan struct{}
	o    *overview
	gen  uint64
}

type cpuSample struct {
	pid        int
	startTicks uint64
	seconds    float64
	at         time.Time
}

func newReader(h *Handler) *reader {
	return &reader{h: h, fs: proc.Default(), cpu: map[string]cpuSample{}}
}

// read returns an overview no older than maxAge, and begun after the last
// change made through this server: the last one, the one being read, or a
// new one.
func (r *reader) read(ctx context.Context, maxAge time.Duration) *overview {
	r.mu.Lock()
	if r.last != nil && maxAge > 0 && r.lastGen == r.gen && r.h.now().Sub(r.last.Time) <= maxAge {
		o := r.last
		r.mu.Unlock()
		return o
	}
	if c := r.inflight; c != nil && c.gen == r.gen {
		r.mu.Unlock()
		<-c.done // a reading takes milliseconds: no need to give up on it
		return c.o
	}
	c := &readCall{done: make(chan struct{}), gen: r.gen}
	r.inflight = c
	r.mu.Unlock()

	c.o = r.fresh(context.WithoutCancel(ctx))
	r.mu.Lock()
	if r.inflight == c {
		r.inflight = nil
	}
	if c.gen >= r.lastGen {
		r.last, r.lastGen = c.o, c.gen
	}
	r.mu.Unlock()
	close(c.done)
	return c.o
}

// changed tells the reader that something was changed through this
// server: later reads do not reuse a reading begun before.
func (r *reader) changed() {
	r.mu.Lock()
	r.gen++
	r.mu.Unlock()
}

// memoryWorkers is how many programs' private memory is read at once.
const memoryWorkers = 8

// fresh reads every program's status now.
func (r *reader) fresh(ctx context.Context) *overview {
	h := r.h
	r.adoptReread(ctx)
	cfg := h.config()
	now := h.now()
	o := &overview{Time: now, Now: now.Format(time.RFC3339), Config: cfg.Path,
		ReadOnly: h.opts.ReadOnly, Version: usrsvcVersion()}
	// "all": also the programs removed from the configuration that still
	// run (a running program is never invisible).
	results := h.manager().DoAll(ctx, usrsvc.ActionStatus, []string{"all"}, false)
	o.Programs = make([]*programView, len(results))
	self := h.selfIn(results)
	for i, res := range results {
		o.Programs[i] = newProgramView(cfg.Program(res.Program), res, now)
		o.Programs[i].Self = res.Program == self
	}
	r.readMemory(o.Programs)
	r.cpuShares(o.Programs, now)
	var ack statedir.ReloadAck
	o.Daemon, ack = r.daemon(cfg, now)
	r.followReread(ack)
	return o
}

// adoptReread puts in force, before a reading, the configuration usrsvcd
// put in force since the last reading, so that this reading (the first
// scrape after usrsvcd reread, say) already lists its programs. When a
// reread through this server holds the configuration, followReread
// adopts it after the reading instead.
func (r *reader) adoptReread(ctx context.Context) {
	h := r.h
	cfg := h.config()
	ack, err := statedir.Dir(cfg.StateDir).ReloadAck()
	if err != nil {
		return
	}
	r.mu.Lock()
	newer := r.ackKnown && ack.Generation > r.ackSeen && ack.OK
	r.mu.Unlock()
	if !newer || !h.reloadMu.TryLock() {
		return
	}
	defer h.reloadMu.Unlock()
	r.mu.Lock()
	r.ackSeen = max(r.ackSeen, ack.Generation)
	r.mu.Unlock()
	h.adoptConfigLocked(ctx)
}

// followReread puts in force here the configuration usrsvcd put in force
// when it reread (usrsvcd reread, SIGUSR1, or a reread through this
// server), so that the page, the API and the metrics list the programs
// usrsvcd supervises. It runs off the reading: a reread through this
// server holds the configuration while it waits for usrsvcd.
func (r *reader) followReread(ack statedir.ReloadAck) {
	r.mu.Lock()
	newer := r.ackKnown && ack.Generation > r.ackSeen && ack.OK
	r.ackSeen, r.ackKnown = max(r.ackSeen, ack.Generation), true
	r.mu.Unlock()
	if !newer || !r.adopting.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.adopting.Store(false)
		r.h.adoptConfig(r.h.ctx)
	}()
}

// readMemory fills the private memory of the running programs: status all
// leaves it out, and the page and the metrics show it.
func (r *reader) readMemory(views []*programView) {
	var wg sync.WaitGroup
	next := make(chan *programView)
	for range memoryWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range next {
				if mem, err := r.fs.Memory(v.PID); err == nil {
					v.PrivateBytes = mem.PrivateKB * 1024
				}
			}
		}()
	}
	for _, v := range views {
		if v.Running && v.PID > 0 {
			next <- v
		}
	}
	close(next)
	wg.Wait()
}

// cpuShares replaces each running program's lifetime CPU share by its
// share since the previous reading of the same process, when there is one.
func (r *reader) cpuShares(views []*programView, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[string]cpuSample, len(views))
	for _, v := range views {
		if !v.Running || v.CPUSeconds == nil {
			continue
		}
		s := cpuSample{pid: v.PID, startTicks: v.startTicks, seconds: *v.CPUSeconds, at: now}
		if prev, ok := r.cpu[v.Name]; ok && prev.pid == s.pid && prev.startTicks == s.startTicks {
			if dt := now.Sub(prev.at).Seconds(); dt >= 0.5 {
				pct := round2(math.Max(0, s.seconds-prev.seconds) / dt * 100)
				v.CPUPercent = &pct
			} else {
				s = prev // too close to measure: keep the older reference
			}
		}
		seen[v.Name] = s
	}
	r.cpu = seen
}

// daemon reads usrsvcd's status (pid, start time, last reread) and its
// last reread acknowledgement.
func (r *reader) daemon(cfg *usrsvc.Config, now time.Time) (daemonView, statedir.ReloadAck) {
	var d daemonView
	sd := statedir.Dir(cfg.StateDir)
	if pid, running, _ := sd.DaemonStatus(context.Background(), cfg.DaemonPidfile); running && pid > 0 {
		d.Running, d.PID = true, pid
		if p, err := r.fs.Stat(pid); err == nil && !p.Zombie() {
			d.StartedAt = p.Started.Format(time.RFC3339)
			d.Started = p.Started.Unix()
			d.Uptime = uptime(now, p.Started)
		}
	}
	ack, err := sd.ReloadAck()
	switch {
	case err != nil:
		d.LastReread = &rereadView{Message: err.Error(), Problems: []string{err.Error()}}
	case ack.Generation > 0:
		d.LastReread = &rereadView{Time: ack.Time.Format(time.RFC3339), Unix: ack.Time.Unix(),
			OK: ack.OK, Message: ack.Message, Problems: ack.Problems}
	}
	return d, ack
}

// newProgramView builds the view of one program's status result.
func newProgramView(pc *usrsvc.Program, res usrsvc.Result, now time.Time) *programView {
	v := &programView{Name: res.Program, Enabled: pc == nil || pc.Enabled}
	if pc != nil {
		v.Monitors = monitorsOf(pc)
		if pc.ReloadSignal != 0 {
			v.ReloadSignal = signalName(pc.ReloadSignal)
		}
	}
	st := res.Status
	if res.Err != nil {
		v.Error = res.Err.Error()
	}
	if st == nil {
		v.State = stateUnknown
		return v
	}
	v.Running, v.StoppedByHand, v.Message, v.Warnings = st.Running, st.State == usrsvc.StateStoppedByHand, st.Message, st.Warnings
	if p := st.Process; st.Running && p != nil {
		v.PID, v.startTicks, v.Cmdline = p.PID, p.StartTicks, p.Title
		if !p.Started.IsZero() {
			v.StartedAt = p.Started.Format(time.RFC3339)
			v.Started = p.Started.Unix()
			v.Uptime = uptime(now, p.Started)
		}
		v.RSSBytes = st.RSSKB * 1024
		pct := round2(st.CPUPercent)
		v.CPUPercent = &pct
		secs := st.CPUTime.Seconds()
		v.CPUSeconds = &secs
	}
	if st.Recorded {
		v.Restarts, v.Reason = st.Restarts, st.Reason
		if e := st.LastExit; e != nil {
			v.LastExit = newExitRec(e)
		}
	}
	v.State = displayState(st, v.LastExit != nil)
	if v.State == stateBackoff && !st.NextTry.IsZero() {
		v.NextTry = st.NextTry.Format(time.RFC3339)
	}
	if st.Running && st.Health != "" {
		v.Health, v.HealthReason, v.HealthFailures = st.Health, st.HealthReason, st.HealthFailures
		if !st.HealthAt.IsZero() {
			v.HealthAt = st.HealthAt.Format(time.RFC3339)
		}
	}
	return v
}

// displayState is the program's state as shown: what runs now first, then
// usrsvcd's record of why it does not.
func displayState(st *usrsvc.Status, exited bool) string {
	daemon := ""
	if st.State != usrsvc.StateStoppedByHand {
		daemon = string(st.State)
	}
	switch {
	case st.Running && st.State == usrsvc.StateRemoved:
		return stateRemoved
	case st.Running && daemon == stateStarting:
		return stateStarting
	case st.Running:
		return stateRunning
	case st.State == usrsvc.StateStoppedByHand:
		return stateStoppedByHand
	case st.Disabled:
		return stateDisabled
	case daemon == stateBackoff || daemon == stateGaveUp || daemon == stateStarting || daemon == stateExited:
		// exited: it ended as expected (autorestart = unexpected, a status
		// of exit_codes), and usrsvcd leaves it down.
		return daemon
	case exited:
		return stateExited
	}
	return stateStopped
}

func newExitRec(e *usrsvc.ExitStatus) *exitRec {
	x := &exitRec{Time: e.Time.Format(time.RFC3339)}
	switch {
	case !e.Known:
		x.Description = "ended, status unknown"
		x.code = -1
	case e.Exited:
		s := e.Status
		x.Status, x.code = &s, s
		x.Description = fmt.Sprintf("exited with status %d", s)
	default:
		s := e.Signal
		x.Signal, x.code = &s, 128+s
		x.Description = fmt.Sprintf("killed by signal %d", s)
	}
	return x
}

// monitorsOf describes the program's configured monitors.
func monitorsOf(pc *usrsvc.Program) []string {
	m := pc
	var out []string
	if m.RSSLimitKB > 0 {
		out = append(out, "rss_limit "+formatBytes(m.RSSLimitKB*1024)+" private")
	}
	if m.ActivityFile != "" {
		out = append(out, fmt.Sprintf("activity of %s within %s", m.ActivityFile, m.ActivityFileLimit))
	}
	if m.HTTPCheck != "" {
		out = append(out, "http_check "+m.HTTPCheck)
	}
	if m.TCPCheck != "" {
		out = append(out, "tcp_check "+m.TCPCheck)
	}
	if m.ExecCheck != "" {
		out = append(out, "exec_check "+m.ExecCheck)
	}
	return out
}

// signalName is a signal as a config file names it: HUP, USR1, ...
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return strings.TrimPrefix(n, "SIG")
	}
	return strconv.Itoa(int(sig))
}

func uptime(now, started time.Time) float64 {
	return math.Max(0, math.Round(now.Sub(started).Seconds()))
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// formatBytes shows a size the way people read it: 12.3 MB.
func formatBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

// formatPercent shows a CPU share: 0.3%, 12%, 180%.
func formatPercent(p float64) string {
	if p < 10 {
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 0, 64) + "%"
}

// formatDuration shows an uptime: 45s, 12m 3s, 5h 2m, 3d 4h.
func formatDuration(secs float64) string {
	s := int64(secs)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd %dh", s/86400, s%86400/3600)
}
