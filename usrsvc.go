package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/statedir"
	"github.com/usrsvc/usrsvc/internal/suggest"
)

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
	// and its caller share a protocol, and a start through a binary that
	// is not a launcher fails with ErrLaunch saying so.
	LauncherPath string
	// Environ is the environment programs with inherit_env inherit; nil
	// means os.Environ() at each launch.
	Environ []string
	// LockTimeout overrides how long an operation waits for a program's lock
	// (default max(31 s, term_to_kill_seconds + success_seconds + 5 s)).
	LockTimeout time.Duration
	// Now is the clock; nil means time.Now. Tests inject one.
	Now func() time.Time
	// Ready, when set, is called once by Run when it holds the daemon lock,
	// has adopted what runs and has launched the starts of the autostart
	// programs that do not run: those starts go on, each for its
	// success_seconds (usrsvcd writes its pidfile, tells systemd READY=1
	// and lets usrsvcd start return there).
	Ready func()
}

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
	monitors map[string][]addedMonitor
	monSeq   int
	// the running supervising loop, nil outside Run.
	running atomic.Pointer[loop]
}

func (m *Manager) setLoop(l *loop) { m.running.Store(l) }

// NewManager returns a Manager for cfg. It completes the programs that
// were appended to cfg.Programs by hand as [Config.Add] does (defaults,
// name order), then checks the configuration as a config file is checked:
// one with problems is refused with a *ConfigError that lists them. It does
// no other I/O. The Manager works on its own copy: later changes to cfg do
// not reach it (use [Manager.Reload]).
func NewManager(cfg *Config, opts Options) (*Manager, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: nil configuration: use usrsvc.LoadConfig or usrsvc.NewConfig", ErrInvalidConfig)
	}
	cfg, err := cfg.complete()
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, fs: proc.Default(), log: opts.Logger, monitors: map[string][]addedMonitor{}}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m.cfg.Store(cfg)
	return m, nil
}

// complete returns a copy of c with its programs completed as Config.Add
// does and sorted by name, after checking it.
func (c *Config) complete() (*Config, error) {
	cp := *c
	cp.Programs = make([]*Program, len(c.Programs))
	for i, pc := range c.Programs {
		if pc != nil {
			q := *pc
			cp.fillDefaults(&q)
			pc = &q
		}
		cp.Programs[i] = pc
	}
	slices.SortStableFunc(cp.Programs, byName)
	if err := cp.validate(); err != nil {
		return nil, err
	}
	return &cp, nil
}

// Config returns a copy of the configuration in force: changing it changes
// nothing (use [Manager.Reload]).
func (m *Manager) Config() *Config {
	cp := *m.cfg.Load()
	cp.Programs = slices.Clone(cp.Programs)
	cp.Broken = slices.Clone(cp.Broken)
	return &cp
}

// config returns the configuration in force, shared: never modified.
func (m *Manager) config() *Config { return m.cfg.Load() }

// matcher returns a Matcher for one operation.
func (m *Manager) matcher() *Matcher { return newMatcher(m.fs, m.opts.Environ) }

func (m *Manager) state() statedir.Dir { return statedir.Dir(m.config().StateDir) }

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
	if l := m.running.Load(); l != nil {
		l.hook(ev)
	}
}

// program returns the named program's config, or ErrUndefined with the
// closest defined name.
func (m *Manager) program(name string) (*Program, error) {
	cfg := m.config()
	if pc := cfg.Program(name); pc != nil {
		return pc, nil
	}
	msg := fmt.Sprintf("no program named %q is defined", name)
	if s := suggest.Closest(name, cfg.names()); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return nil, fmt.Errorf("%w: %s", ErrUndefined, msg)
}

// Action names an operation on a program, as the command line spells it.
type Action string

// The actions of [Manager.Do] and [Manager.DoAll].
const (
	// ActionStart starts the program unless it already runs, and waits for
	// its start to succeed (success_seconds). A manual start clears a
	// manual stop.
	ActionStart Action = "start"
	// ActionStop stops the program: SIGTERM, SIGKILL after
	// term_to_kill_seconds, until it is gone. usrsvcd will not restart it
	// until a manual start or restart.
	ActionStop Action = "stop"
	// ActionRestart stops then starts the program under one lock.
	ActionRestart Action = "restart"
	// ActionStatus reports whether the program runs. Not running is not
	// an error: check Status.Running.
	ActionStatus Action = "status"
	// ActionReload sends the program its reload_signal: it stays the same
	// process (a program that re-executes itself on it is followed, not
	// restarted). A program without reload_signal refuses it
	// (ErrInvalidAction); one that does not run is ErrNotRunning.
	ActionReload Action = "reload"
)

// Do runs action on the named program and returns what it found or left.
func (m *Manager) Do(ctx context.Context, action Action, name string) (*Status, error) {
	if err := checkAction(action); err != nil {
		return &Status{Program: name}, &ProgramError{Program: name, Op: action, Err: err}
	}
	return m.one(ctx, action, name)
}

func (m *Manager) one(ctx context.Context, action Action, name string) (*Status, error) {
	if err := m.state().CheckSafe(); err != nil {
		return &Status{Program: name}, &ProgramError{Program: name, Op: action, Err: err}
	}
	pc, err := m.program(name)
	if err != nil {
		if pc = m.config().broken(name); pc != nil {
			err = pc.brokenErr(action)
		} else if st, err2 := m.undefined(action, name, err); err2 == nil {
			return st, nil
		} else {
			err = err2
		}
	}
	if err != nil {
		return &Status{Program: name}, &ProgramError{Program: name, Op: action, Err: err}
	}
	st, err := m.do(ctx, action, pc, m.matcher(), byHand)
	if err != nil {
		err = &ProgramError{Program: name, Op: action, Err: err}
	}
	return st, err
}

// do runs one action on one program.
func (m *Manager) do(ctx context.Context, action Action, pc *Program, mt *Matcher, by origin) (*Status, error) {
	switch action {
	case ActionStatus:
		return m.status(pc, mt)
	case ActionReload:
		return m.reloadProgram(ctx, pc, by)
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
	var lock *os.File
	var cancelled *Process // a start a stop by hand cancelled
	var err error
	if action == ActionStop && by == byHand {
		lock, cancelled, err = m.lockForStop(ctx, pc)
	} else {
		lock, err = m.lock(ctx, pc)
	}
	if err != nil {
		return &Status{Program: pc.Name}, err
	}
	defer lock.Close()
	// A start's marker left behind (its starter and launcher are gone: we
	// hold the lock) means nothing now.
	m.state().ClearStarting(pc.Name)
	switch action {
	case ActionStart:
		return m.start(ctx, pc, mt, by, lock)
	case ActionStop:
		st, err := m.stop(ctx, pc, mt, by)
		if err == nil && cancelled != nil && !st.WasRunning {
			st.WasRunning, st.Message = true, fmt.Sprintf("stopped during its start (pid %d, in its success window)", cancelled.PID)
		}
		return st, err
	}
	// Everything a start checks before launching is checked before the
	// stop: a restart that could not start the program again leaves it
	// running.
	if st, err := m.checkRestart(pc, mt); err != nil {
		return st, err
	}
	if by == byHand {
		if err := m.state().SetManual(pc.Name, string(ActionRestart), m.now()); err != nil {
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

// checkAction accepts the actions of Do and DoAll.
func checkAction(action Action) error {
	switch action {
	case ActionStart, ActionStop, ActionRestart, ActionStatus, ActionReload:
		return nil
	}
	return fmt.Errorf("%w: unknown action %q (use start, stop, restart, reload or status)", ErrInvalidAction, action)
}

// DoAll runs action on several programs: those named (nil or "all" means
// every program; for status, "all" also lists the programs removed from
// the configuration that still run, with State StateRemoved), one after
// the other in name order or, with parallel,
// concurrently (start, stop and restart; status always reads several
// programs at once) — as many at once as the open-file limit allows, each
// holding a few files; the results come in name order, one per program. A
// name that is not defined gets a Result with ErrUndefined. Disabled
// programs are skipped by start and restart (unless named), and shown by
// status.
func (m *Manager) DoAll(ctx context.Context, action Action, names []string, parallel bool) []Result {
	if err := checkAction(action); err != nil {
		return []Result{{Program: "all", Action: action, Time: m.now(), Status: &Status{Program: "all"}, Err: err}}
	}
	if err := m.state().CheckSafe(); err != nil {
		return []Result{{Program: "all", Action: action, Status: &Status{Program: "all"}, Err: err, Time: m.now()}}
	}
	cfg := m.config()
	progs, undefined, depOnly := m.targets(action, names)
	mt := m.matcher()
	mt.shared = true
	mt.daemonUp(cfg)
	parallel = parallel && action != ActionStatus
	if parallel {
		// Concurrent programs share one snapshot, taken now. Sequential
		// ones take it lazily: when every pidfile is good, none is needed.
		if err := mt.prepare(); err != nil {
			return []Result{{Program: "all", Action: action, Status: &Status{Program: "all"}, Err: err, Time: m.now()}}
		}
	}
	results := make([]Result, len(progs), len(progs)+len(undefined))
	failed := make([]error, len(progs)) // by index, for the dependents
	index := map[string]int{}
	for i, pc := range progs {
		index[pc.Name] = i
	}
	run := func(i int, pc *Program, mt *Matcher) {
		var st *Status
		act := action
		if depOnly[pc.Name] {
			act = ActionStart // a dependency is started if it does not run, never restarted
		}
		err := pc.brokenErr(act)
		if err == nil && (action == ActionStart || action == ActionRestart) {
			err = depFailure(cfg, pc, index, failed)
		}
		if err == nil {
			st, err = m.do(ctx, act, pc, mt, byHand)
		} else {
			st = &Status{Program: pc.Name}
		}
		failed[i] = err
		if err != nil {
			err = &ProgramError{Program: pc.Name, Op: act, Err: err}
		}
		results[i] = Result{Program: pc.Name, Action: act, Status: st, Err: err, Time: m.now()}
	}
	// As many at once as the open files allow: with a low limit, -P is no
	// worse than one at a time (it used to fail most starts at 12 to 40).
	atOnce := parallelOps(nofileLimit(), len(progs))
	if parallel && (action == ActionStart || action == ActionRestart) && nprocTight(mt, len(progs)) {
		// Near the process limit, one at a time: concurrent operations need
		// threads of this process that the limit may not grant by then,
		// and Go cannot survive a thread it fails to create. The starts
		// that find no process left fail with code 11, and say why.
		atOnce = 1
	}
	switch {
	case parallel:
		// Dependencies first (dependents first for a stop); the programs of
		// one level concurrently, as many at once as the open files allow.
		slots := make(chan struct{}, atOnce)
		for _, level := range dependencyLevels(cfg, progs, action == ActionStop) {
			var wg sync.WaitGroup
			for _, i := range level {
				wg.Add(1)
				// Each goroutine gets its own matcher over the shared snapshot.
				mt2 := mt.clone()
				slots <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-slots }()
					run(i, progs[i], mt2)
				}()
			}
			wg.Wait()
		}
	case action == ActionStatus:
		// status only reads: 8 workers (9.1 ms for 200 programs here, 9.9 with
		// 4, 13.4 with 2; file reads block a thread each) share one matcher (its lazy
		// snapshot is guarded), so the reads of /proc and of the state
		// directory overlap.
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < min(statusWorkers, atOnce); w++ {
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
		for _, level := range dependencyLevels(cfg, progs, action == ActionStop) {
			for _, i := range level {
				run(i, progs[i], mt)
			}
		}
	}
	for _, name := range undefined {
		_, err := m.program(name)
		st, err := m.undefined(action, name, err)
		if err != nil {
			st, err = &Status{Program: name}, &ProgramError{Program: name, Op: action, Err: err}
		}
		results = append(results, Result{Program: name, Action: action, Status: st, Err: err, Time: m.now()})
	}
	if action == ActionStatus && slices.Contains(names, "all") {
		// "all" is everything that runs: the programs removed from the
		// configuration that still run too.
		results = append(results, m.removedResults(ctx)...)
	}
	slices.SortStableFunc(results, func(a, b Result) int { return strings.Compare(a.Program, b.Program) })
	return results
}

// depFailure is why pc is not started: a dependency of it among the
// programs of this operation failed (nil when none did).
func depFailure(cfg *Config, pc *Program, index map[string]int, failed []error) error {
	deps, _ := cfg.dependencies(pc)
	for _, d := range deps {
		i, ok := index[d]
		if !ok || failed[i] == nil {
			continue
		}
		var pe *ProgramError
		cause := failed[i]
		if errors.As(cause, &pe) {
			cause = pe.Err
		}
		if errors.Is(cause, ErrNotReady) {
			return fmt.Errorf("%w: not started: dependency %s not ready: %w", ErrNotReady, d, cause)
		}
		return fmt.Errorf("%w: not started: dependency %s did not start: %w", ErrFailed, d, cause)
	}
	return nil
}

// dependencyLevels orders the programs of an operation by their
// dependencies among them: level 0 depends on none of them, level 1 on
// level 0, ...; reversed for a stop (dependents first). Within a level, the
// name order.
func dependencyLevels(cfg *Config, progs []*Program, reverse bool) [][]int {
	index := map[string]int{}
	for i, pc := range progs {
		index[pc.Name] = i
	}
	level := make([]int, len(progs))
	for i := range level {
		level[i] = -1
	}
	var depth func(i int, seen map[int]bool) int
	depth = func(i int, seen map[int]bool) int {
		if level[i] >= 0 {
			return level[i]
		}
		if seen[i] { // a cycle (refused by the loader): no order
			return 0
		}
		seen[i] = true
		d := 0
		deps, _ := cfg.dependencies(progs[i])
		for _, name := range deps {
			if j, ok := index[name]; ok {
				d = max(d, depth(j, seen)+1)
			}
		}
		level[i] = d
		return d
	}
	var levels [][]int
	for i := range progs {
		d := depth(i, map[int]bool{})
		for len(levels) <= d {
			levels = append(levels, nil)
		}
		levels[d] = append(levels[d], i)
	}
	if reverse {
		slices.Reverse(levels)
	}
	return levels
}

// undefined is the outcome of action on name, which names no configured
// program (err says so): the status of a program removed from the
// configuration that still runs, or err, which then mentions that
// process.
func (m *Manager) undefined(action Action, name string, err error) (*Status, error) {
	st, ok := m.removedStatus(name)
	switch {
	case !ok:
		return nil, err
	case action == ActionStatus:
		return st, nil
	}
	return nil, fmt.Errorf("%w; it was removed from the configuration and still runs (pid %d): stop it with kill %d",
		err, st.Process.PID, st.Process.PID)
}

// targets returns the programs names designate (every program, valid or
// broken, for nil or "all"; a group stands for its programs), in name
// order, and the names that designate none. Every program covers the
// enabled ones only for start and restart, and those with a reload_signal
// only for reload.
func (m *Manager) targets(action Action, names []string) (progs []*Program, undefined []string, depOnly map[string]bool) {
	cfg := m.config()
	all := len(names) == 0 || slices.Contains(names, "all")
	seen := map[string]bool{}
	for _, name := range names {
		if name == "all" || seen[name] {
			continue
		}
		seen[name] = true
		if members, ok := cfg.Groups[name]; ok && cfg.Program(name) == nil {
			for _, n := range members {
				seen[n] = true
			}
			continue
		}
		if !all && cfg.Program(name) == nil && cfg.broken(name) == nil {
			undefined = append(undefined, name)
		}
	}
	if !all && (action == ActionStart || action == ActionRestart) {
		// A start starts the program's dependencies first (a restart
		// starts them if they do not run).
		var add func(pc *Program)
		add = func(pc *Program) {
			deps, _ := cfg.dependencies(pc)
			for _, d := range deps {
				if !seen[d] {
					seen[d] = true
					add(cfg.Program(d))
				}
			}
		}
		named := maps.Clone(seen)
		for name := range named {
			if pc := cfg.Program(name); pc != nil {
				add(pc)
			}
		}
		depOnly = map[string]bool{}
		for name := range seen {
			if !named[name] {
				depOnly[name] = true
			}
		}
	}
	for _, pc := range cfg.allPrograms() {
		switch {
		case all && !pc.Enabled && (action == ActionStart || action == ActionRestart) && !seen[pc.Name]:
		case all && action == ActionReload && pc.ReloadSignal == 0 && !seen[pc.Name]:
		case all || seen[pc.Name]:
			progs = append(progs, pc)
		}
	}
	return progs, undefined, depOnly
}

// statusWorkers is how many programs a status all reads at once.
const statusWorkers = 8

// AddMonitor attaches a custom monitor to the named program: [Manager.Run]
// runs it like the monitors of the program's [[Monitor]] section, every
// monitor_interval once the program has been up monitor_after. It may be
// called before or during Run. remove detaches it again (a check already
// running finishes); the monitors of the [[Monitor]] section stay.
func (m *Manager) AddMonitor(program string, mon Monitor) (remove func(), err error) {
	if _, err := m.program(program); err != nil {
		return nil, err
	}
	if mon == nil {
		return nil, fmt.Errorf("%w: AddMonitor(%q, nil): a nil Monitor", ErrInvalidAction, program)
	}
	m.monMu.Lock()
	defer m.monMu.Unlock()
	m.monSeq++
	id := m.monSeq
	m.monitors[program] = append(m.monitors[program], addedMonitor{id, mon})
	return func() {
		m.monMu.Lock()
		defer m.monMu.Unlock()
		m.monitors[program] = slices.DeleteFunc(m.monitors[program], func(a addedMonitor) bool { return a.id == id })
	}, nil
}

// addedMonitor is a monitor added with AddMonitor.
type addedMonitor struct {
	id  int
	mon Monitor
}

// byName orders programs by name, nil last.
func byName(a, b *Program) int {
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
