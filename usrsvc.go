package usrsvc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/suggest"
)

// Version is the version of usrsvc.
const Version = "0.1.0"

// Options tunes a Manager. The zero value is ready to use.
type Options struct {
	// Logger receives the log lines of operations and of the supervising
	// loop. nil discards them.
	Logger *slog.Logger
	// OnEvent, when set, is called with every Event: of the operations
	// (Start, Stop, ...) in their caller's goroutine, and of Run in its
	// loop and in its workers. So calls may be concurrent: OnEvent must be
	// safe for concurrent use. It must return quickly (the loop waits for
	// it) and must not wait for the Manager (call Reload, or a Start whose
	// result it waits for, from a goroutine of its own). Run makes no call
	// after it returns.
	OnEvent func(Event)
	// Alerter receives the events that warrant an alert, off the
	// supervising loop (see [Alerter]). nil: no alerts. usrsvcd uses
	// package github.com/usrsvc/usrsvc/sendmail.
	Alerter Alerter
	// LauncherPath is the binary re-executed as the launcher; "" means
	// /proc/self/exe (the running binary, which imports this package and so
	// recognises the launcher marker at initialisation). Another binary
	// must be built with the same version of this package: the launcher
	// and its caller share a protocol ([CheckLauncher] tests one).
	LauncherPath string
	// Environ is the environment programs with inherit_env inherit; nil
	// means os.Environ() at each launch.
	Environ []string
	// LockTimeout overrides how long an operation waits for a program's lock
	// (default max(31 s, term_to_kill_seconds + success_seconds + 5 s)).
	LockTimeout time.Duration
	// Now is the clock; nil means time.Now. Tests inject one.
	Now func() time.Time
	// Ready, when set, is called once by Run when it holds the daemon lock
	// and has adopted or started the programs (usrsvcd writes its pidfile
	// and tells systemd READY=1 there).
	Ready func()
}

// Mode says how an "all" operation runs.
type Mode int

const (
	// Sequential runs the programs one after the other, in name order.
	Sequential Mode = iota
	// Parallel runs them concurrently; results still come in name order.
	Parallel
)

// Manager starts, stops and watches the programs of one configuration. Its
// methods are safe for concurrent use; operations on one program are
// serialised by the program's lock in the state directory, which usrsvc,
// usrsvcd and embedders share.
type Manager struct {
	cfg  atomic.Pointer[Config]
	opts Options
	fs   proc.FS
	log  *slog.Logger
	// monitors added with AddMonitor, by program name.
	monMu    sync.Mutex
	monitors map[string][]Monitor
	// the running supervising loop, nil outside Run.
	running atomic.Pointer[loop]
}

func (m *Manager) setLoop(l *loop) { m.running.Store(l) }

// NewManager returns a Manager for cfg. It completes the programs that
// were appended to cfg.Programs by hand as [Config.Add] does (defaults,
// name order), then checks cfg with [Config.Validate]: a configuration
// with problems is refused with a *ConfigError that lists them. It does no
// other I/O.
func NewManager(cfg *Config, opts Options) (*Manager, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: nil configuration: use usrsvc.LoadConfig or usrsvc.NewConfig", ErrInvalidConfig)
	}
	for _, pc := range cfg.Programs {
		if pc != nil {
			cfg.fillDefaults(pc)
		}
	}
	if !slices.IsSortedFunc(cfg.Programs, byName) {
		slices.SortStableFunc(cfg.Programs, byName)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, fs: proc.Default(), log: opts.Logger, monitors: map[string][]Monitor{}}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m.cfg.Store(cfg)
	return m, nil
}

// Config returns the configuration in force.
func (m *Manager) Config() *Config { return m.cfg.Load() }

func (m *Manager) state() stateDir { return stateDir(m.Config().Main.StateDir) }

func (m *Manager) now() time.Time {
	if m.opts.Now != nil {
		return m.opts.Now()
	}
	return time.Now()
}

func (m *Manager) environ() []string {
	if m.opts.Environ != nil {
		return m.opts.Environ
	}
	return os.Environ()
}

func (m *Manager) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = m.now()
	}
	logEvent(m.log, ev)
	if m.opts.OnEvent != nil {
		m.opts.OnEvent(ev)
	}
}

// program returns the named program's config, or ErrUndefined with the
// closest defined name.
func (m *Manager) program(name string) (*ProgramConfig, error) {
	cfg := m.Config()
	if pc := cfg.Program(name); pc != nil {
		return pc, nil
	}
	msg := fmt.Sprintf("no program named %q is defined", name)
	if s := suggest.Closest(name, cfg.Names()); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return nil, fmt.Errorf("%w: %s", ErrUndefined, msg)
}

// Start starts the named program unless it already runs, and waits for its
// success window. A manual start clears a manual stop.
func (m *Manager) Start(ctx context.Context, name string) (*Status, error) {
	return m.one(ctx, ActionStart, name)
}

// Stop stops the named program: SIGTERM, SIGKILL after
// term_to_kill_seconds, until it is gone. usrsvcd will not restart it until
// a manual Start or Restart.
func (m *Manager) Stop(ctx context.Context, name string) (*Status, error) {
	return m.one(ctx, ActionStop, name)
}

// Restart stops then starts the named program under one lock.
func (m *Manager) Restart(ctx context.Context, name string) (*Status, error) {
	return m.one(ctx, ActionRestart, name)
}

// Status reports whether the named program runs. Not running is not an
// error: check Status.Running.
func (m *Manager) Status(ctx context.Context, name string) (*Status, error) {
	return m.one(ctx, ActionStatus, name)
}

// Action names an operation on a program, as the command line spells it.
type Action string

// The actions.
const (
	ActionStart   Action = "start"
	ActionStop    Action = "stop"
	ActionRestart Action = "restart"
	ActionStatus  Action = "status"
	ActionSignal  Action = "signal" // [Manager.Signal]; not one of Do's
	ActionTail    Action = "tail"   // the log readers ([Manager.TailLog]); not one of Do's
)

func (m *Manager) one(ctx context.Context, action Action, name string) (*Status, error) {
	if err := m.state().checkSafe(); err != nil {
		return &Status{Program: name}, &ProgramError{Program: name, Op: action, Err: err}
	}
	pc, err := m.program(name)
	if err != nil {
		if pc = m.Config().broken(name); pc != nil {
			err = pc.brokenErr(action)
		}
	}
	if err != nil {
		return &Status{Program: name}, &ProgramError{Program: name, Op: action, Err: err}
	}
	st, err := m.do(ctx, action, pc, newMatcher(m.fs), byHand)
	if err != nil {
		err = &ProgramError{Program: name, Op: action, Err: err}
	}
	return st, err
}

// do runs one action on one program.
func (m *Manager) do(ctx context.Context, action Action, pc *ProgramConfig, mt *matcher, by origin) (*Status, error) {
	switch action {
	case ActionStatus:
		return m.status(pc, mt)
	case ActionStart, ActionStop, ActionRestart:
	default:
		return &Status{Program: pc.Name}, fmt.Errorf("%w: unknown action %q (use start, stop, restart or status)", ErrInvalidAction, action)
	}
	if action != ActionStop && !pc.Enabled {
		return &Status{Program: pc.Name, Message: "disabled", Disabled: true}, fmt.Errorf("%w: %s has enabled = false in %s:%d", ErrDisabled, pc.Name, pc.File, pc.Line)
	}
	if err := ctx.Err(); err != nil {
		return &Status{Program: pc.Name}, fmt.Errorf("%w: not done, the operation was cancelled: %w", ErrFailed, context.Cause(ctx))
	}
	lock, err := m.lock(ctx, pc)
	if err != nil {
		return &Status{Program: pc.Name}, err
	}
	defer lock.Close()
	switch action {
	case ActionStart:
		return m.start(ctx, pc, mt, by, lock)
	case ActionStop:
		return m.stop(ctx, pc, mt, by)
	}
	if by == byHand {
		if err := m.state().setManual(pc.Name, ActionRestart, m.now()); err != nil {
			return &Status{Program: pc.Name}, err
		}
		by = byHandRestart
	}
	st, err := m.stop(ctx, pc, mt, by)
	if err != nil {
		return st, err
	}
	mt.forget() // what ran is gone: a fresh look for the start
	st2, err := m.start(ctx, pc, mt, by, lock)
	st2.Warnings = append(st.Warnings, st2.Warnings...)
	st2.WasRunning = st.WasRunning
	if err == nil && st.WasRunning {
		st2.Message = "restarted"
	}
	return st2, err
}

// Do runs action (start, stop, restart or status) on the named program:
// the action chosen at run time, as a command line or a remote call does.
// It is Start, Stop, Restart or Status with its outcome as a Result.
func (m *Manager) Do(ctx context.Context, action Action, name string) Result {
	if err := checkAction(action); err != nil {
		return Result{Program: name, Action: action, Time: m.now(), Status: &Status{Program: name},
			Err: &ProgramError{Program: name, Op: action, Err: err}}
	}
	st, err := m.one(ctx, action, name)
	return Result{Program: name, Action: action, Status: st, Err: err, Time: m.now()}
}

// checkAction accepts the actions of Do and DoAll.
func checkAction(action Action) error {
	switch action {
	case ActionStart, ActionStop, ActionRestart, ActionStatus:
		return nil
	}
	return fmt.Errorf("%w: unknown action %q (use start, stop, restart or status)", ErrInvalidAction, action)
}

// DoAll runs action on every program, in name order, one after the other
// or, with Parallel, concurrently (start, stop and restart; status always
// reads several programs at once); the results come in name order.
// Disabled programs are skipped by start and restart, and shown by status.
func (m *Manager) DoAll(ctx context.Context, action Action, mode Mode) []Result {
	if err := checkAction(action); err != nil {
		return []Result{{Program: "all", Action: action, Time: m.now(), Status: &Status{Program: "all"}, Err: err}}
	}
	if err := m.state().checkSafe(); err != nil {
		return []Result{{Program: "all", Action: action, Status: &Status{Program: "all"}, Err: err, Time: m.now()}}
	}
	cfg := m.Config()
	mt := newMatcher(m.fs)
	mt.shared = true
	mt.daemonUp(cfg)
	parallel := mode == Parallel && action != ActionStatus
	if parallel {
		// Concurrent programs share one snapshot, taken now. Sequential
		// ones take it lazily: when every pidfile is good, none is needed.
		if err := mt.prepare(); err != nil {
			return []Result{{Program: "all", Action: action, Status: &Status{Program: "all"}, Err: err, Time: m.now()}}
		}
	}
	var progs []*ProgramConfig
	for _, pc := range cfg.allPrograms() {
		if !pc.Enabled && (action == ActionStart || action == ActionRestart) {
			continue
		}
		progs = append(progs, pc)
	}
	results := make([]Result, len(progs))
	run := func(i int, pc *ProgramConfig, mt *matcher) {
		var st *Status
		err := pc.brokenErr(action)
		if err == nil {
			st, err = m.do(ctx, action, pc, mt, byHand)
		} else {
			st = &Status{Program: pc.Name}
		}
		if err != nil {
			err = &ProgramError{Program: pc.Name, Op: action, Err: err}
		}
		results[i] = Result{Program: pc.Name, Action: action, Status: st, Err: err, Time: m.now()}
	}
	switch {
	case parallel:
		var wg sync.WaitGroup
		for i, pc := range progs {
			wg.Add(1)
			// Each goroutine gets its own matcher over the shared snapshot.
			mt2 := mt.clone()
			go func() { defer wg.Done(); run(i, pc, mt2) }()
		}
		wg.Wait()
	case action == ActionStatus:
		// status only reads: 8 workers (9.1 ms for 200 programs here, 9.9 with
		// 4, 13.4 with 2; file reads block a thread each) share one matcher (its lazy
		// snapshot is guarded), so the reads of /proc and of the state
		// directory overlap.
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < statusWorkers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					run(i, progs[i], mt)
				}
			}()
		}
		for i := range progs {
			next <- i
		}
		close(next)
		wg.Wait()
	default:
		for i, pc := range progs {
			run(i, pc, mt)
		}
	}
	return results
}

// statusWorkers is how many programs a status all reads at once.
const statusWorkers = 8

// AddMonitor attaches a custom monitor to the named program: [Manager.Run]
// runs it like the monitors of the program's [[Monitor]] section, every
// monitor_interval once the program has been up monitor_after. It may be
// called before or during Run.
func (m *Manager) AddMonitor(program string, mon Monitor) error {
	if _, err := m.program(program); err != nil {
		return err
	}
	if mon == nil {
		return fmt.Errorf("%w: AddMonitor(%q, nil): a nil Monitor", ErrInvalidAction, program)
	}
	m.monMu.Lock()
	defer m.monMu.Unlock()
	m.monitors[program] = append(m.monitors[program], mon)
	return nil
}

// RemoveMonitor detaches from the named program the monitors added with
// [Manager.AddMonitor] whose Name is name, and returns how many it removed.
// The monitors of the program's [[Monitor]] section stay; a check already
// running finishes.
func (m *Manager) RemoveMonitor(program, name string) int {
	m.monMu.Lock()
	defer m.monMu.Unlock()
	kept := m.monitors[program][:0]
	removed := 0
	for _, mon := range m.monitors[program] {
		if mon.Name() == name {
			removed++
			continue
		}
		kept = append(kept, mon)
	}
	m.monitors[program] = kept
	return removed
}

// byName orders programs by name, nil last.
func byName(a, b *ProgramConfig) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return strings.Compare(a.Name, b.Name)
}
