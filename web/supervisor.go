package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/home"
	"github.com/usrsvc/usrsvc/internal/statedir"
	"github.com/usrsvc/usrsvc/internal/xmlrpc"
	"golang.org/x/sys/unix"
)

// APIVersion is the supervisord XML-RPC API version usrsvcweb speaks;
// supervisorctl refuses a server that answers another.
const APIVersion = "3.0"

// supervisord's process states.
const (
	supStopped  = 0
	supStarting = 10
	supRunning  = 20
	supBackoff  = 30
	supExited   = 100
	supFatal    = 200
)

var supStateNames = map[int]string{supStopped: "STOPPED", supStarting: "STARTING", supRunning: "RUNNING",
	supBackoff: "BACKOFF", supExited: "EXITED", supFatal: "FATAL"}

// supervisorMethods is the supervisor.* namespace that supervisorctl uses.
func (h *Handler) supervisorMethods() map[string]rpcMethod {
	version := func(context.Context, []any) (any, error) { return APIVersion, nil }
	ms := map[string]rpcMethod{
		"supervisor.getAPIVersion": {sig: []string{"string"}, help: "Return the version of the RPC API used by usrsvcweb (supervisord's: 3.0).", fn: version},
		"supervisor.getVersion":    {sig: []string{"string"}, help: "Deprecated alias of getAPIVersion.", fn: version},
		"supervisor.getSupervisorVersion": {sig: []string{"string"}, help: "Return the version of usrsvc.",
			fn: func(context.Context, []any) (any, error) { return usrsvcVersion(), nil }},
		"supervisor.getIdentification": {sig: []string{"string"}, help: "Return the identifying string of this server: usrsvc.",
			fn: func(context.Context, []any) (any, error) { return "usrsvc", nil }},
		"supervisor.getState": {sig: []string{"struct"}, help: "Return the server's state as a struct {statecode, statename}: always RUNNING (1).",
			fn: func(context.Context, []any) (any, error) {
				return map[string]any{"statecode": 1, "statename": "RUNNING"}, nil
			}},
		"supervisor.getPID": {sig: []string{"int"}, help: "Return the pid of usrsvcd, the supervising daemon; 0 when it is not running.",
			fn: func(context.Context, []any) (any, error) {
				cfg := h.config()
				if pid, ok, _ := statedir.Dir(cfg.StateDir).DaemonStatus(context.Background(), cfg.DaemonPidfile); ok {
					return pid, nil
				}
				return 0, nil
			}},
		"supervisor.getAllProcessInfo": {sig: []string{"array"}, help: "Return an array of process info structs, one per program, in name order.",
			fn: func(ctx context.Context, _ []any) (any, error) { return h.allProcessInfo(ctx), nil }},
		"supervisor.getProcessInfo": {sig: []string{"struct", "string"}, help: "Return the process info struct of the program GROUP:NAME (or NAME).",
			fn: func(ctx context.Context, a []any) (any, error) {
				gi := h.groups()
				name, err := gi.program(str(a, 0))
				if err != nil {
					return nil, err
				}
				st, err := h.manager().Do(ctx, usrsvc.ActionStatus, name)
				if err != nil && !errors.Is(err, usrsvc.ErrNotRunning) {
					return nil, opFault(name, err)
				}
				return h.processInfo(gi.groupOf(name), gi.cfg.Program(name), st), nil
			}},
		"supervisor.getAllConfigInfo": {sig: []string{"array"}, help: "Return an array of config info structs, one per program.",
			fn: func(context.Context, []any) (any, error) { return h.allConfigInfo(), nil }},
		"supervisor.startProcess": {sig: []string{"boolean", "string", "boolean"}, optional: 1, changes: true,
			help: "Start the program GROUP:NAME (GROUP:* starts the group's programs, as startProcessGroup does), its depends_on " +
				"first, and wait until it is ready (ready) or has run success_seconds. The optional wait is accepted and ignored: " +
				"a start always waits. A program that exits or is not ready in time is ABNORMAL_TERMINATION, one that cannot be " +
				"launched (or whose dependency did not start) SPAWN_ERROR, with the reason.",
			fn: h.rpcStart},
		"supervisor.startProcessGroup": {sig: []string{"array", "string", "boolean"}, optional: 1, changes: true,
			help: "Start the programs of the group NAME that do not run, concurrently (dependencies first); return an array of result structs.",
			fn:   func(ctx context.Context, a []any) (any, error) { return h.groupOp(ctx, str(a, 0), h.startResults) }},
		"supervisor.startAllProcesses": {sig: []string{"array", "boolean"}, optional: 1, changes: true,
			help: "Start every enabled program that is not running, concurrently; return an array of result structs.",
			fn:   func(ctx context.Context, _ []any) (any, error) { return h.startResults(ctx, nil), nil }},
		"supervisor.stopProcess": {sig: []string{"boolean", "string", "boolean"}, optional: 1, changes: true,
			help: "Stop the program GROUP:NAME by hand (usrsvcd leaves it stopped until a start), waiting until it is gone.",
			fn:   h.rpcStop},
		"supervisor.stopProcessGroup": {sig: []string{"array", "string", "boolean"}, optional: 1, changes: true,
			help: "Stop the programs of the group NAME by hand; return an array of result structs. During supervisorctl update, a " +
				"group reloadConfig listed as changed or removed is stopped as it was configured when added (a changed command " +
				"would not match what it started), and addProcessGroup starts again what this stopped.",
			fn: h.rpcStopGroup},
		"supervisor.stopAllProcesses": {sig: []string{"array", "boolean"}, optional: 1, changes: true,
			help: "Stop every running program by hand, concurrently; return an array of result structs.",
			fn:   func(ctx context.Context, _ []any) (any, error) { return h.stopResults(ctx, nil), nil }},
		"supervisor.signalProcess": {sig: []string{"boolean", "string", "string"}, changes: true,
			help: "Send the signal SIG (a name such as HUP or SIGHUP, or a number) to the program GROUP:NAME.",
			fn:   h.rpcSignal},
		"supervisor.signalProcessGroup": {sig: []string{"array", "string", "string"}, changes: true,
			help: "Send a signal to the running programs of the group NAME; return an array of result structs.",
			fn: func(ctx context.Context, a []any) (any, error) {
				sig := str(a, 1)
				return h.groupOp(ctx, str(a, 0), func(ctx context.Context, only []string) []any { return h.signalResults(ctx, only, sig) })
			}},
		"supervisor.signalAllProcesses": {sig: []string{"array", "string"}, changes: true,
			help: "Send a signal to every running program; return an array of result structs.",
			fn:   func(ctx context.Context, a []any) (any, error) { return h.signalResults(ctx, nil, str(a, 0)), nil }},
		"supervisor.reloadConfig": {sig: []string{"array"}, changes: true,
			help: "Load the configuration again (and make a running usrsvcd reread it); return [[added, changed, removed]], " +
				"supervisorctl groups: added are configured and not added yet (addProcessGroup), changed were added with other " +
				"settings, removed were added and are no longer configured. Nothing is stopped or restarted here: supervisorctl " +
				"update then stops the changed and removed groups, removes them, and adds the changed and added ones " +
				"(addProcessGroup starts again what that stop stopped).",
			fn: h.rpcReloadConfig},
		"supervisor.addProcessGroup": {sig: []string{"boolean", "string"}, changes: true,
			help: "Add the configured group NAME (supervisorctl update and add): its settings are those reloadConfig compares " +
				"with. The programs of it that supervisorctl update stopped are started again; others are left to usrsvcd.",
			fn: h.rpcAddGroup},
		"supervisor.removeProcessGroup": {sig: []string{"boolean", "string"}, changes: true,
			help: "Remove the group NAME from the groups added (supervisorctl update and remove); refused (STILL_RUNNING) while " +
				"one of its programs runs. Programs are never stopped by it.",
			fn: h.rpcRemoveGroup},
		"supervisor.shutdown": {sig: []string{"boolean"}, changes: true,
			help: "Refused: usrsvc has no manager process to shut down.", fn: noManager},
		"supervisor.restart": {sig: []string{"boolean"}, changes: true,
			help: "Refused: usrsvc has no manager process to restart.", fn: noManager},
	}
	for name, m := range h.logMethods() {
		ms[name] = m
	}
	return ms
}

func noManager(context.Context, []any) (any, error) {
	return nil, fault(faultFailed, "usrsvc has no manager process to shut down or restart: programs run detached "+
		"and keep running whatever happens to usrsvcd or usrsvcweb. To stop the programs: supervisorctl stop all. "+
		"To stop or restart the supervising daemon: usrsvcd stop / usrsvcd restart on the host (programs keep running). "+
		"To load a changed configuration: supervisorctl reread")
}

// groups returns the supervisorctl groups of the configuration in force.
func (h *Handler) groups() *groupIndex { return newGroupIndex(h.config()) }

// program resolves a namespec that must name one program (GROUP:NAME,
// NAME, or a group of one program).
func (gi *groupIndex) program(spec string) (string, error) {
	t, err := gi.resolve(spec)
	if err != nil {
		return "", err
	}
	if len(t.names) != 1 {
		return "", fault(faultBadName, spec)
	}
	return t.names[0], nil
}

// programName resolves a namespec naming one program.
func (h *Handler) programName(spec string) (string, error) { return h.groups().program(spec) }

// groupOp runs an all-style operation on the programs of the group NAME.
func (h *Handler) groupOp(ctx context.Context, group string, op func(context.Context, []string) []any) (any, error) {
	t, err := h.groups().resolve(group + ":*")
	if err != nil {
		return nil, fault(faultBadName, group)
	}
	return op(ctx, t.names), nil
}

// opFault maps a library error to supervisord's fault.
func opFault(name string, err error) *xmlrpc.Fault {
	switch {
	case errors.Is(err, usrsvc.ErrUndefined):
		return fault(faultBadName, name)
	case errors.Is(err, usrsvc.ErrNotRunning):
		return fault(faultNotRunning, name)
	case errors.Is(err, usrsvc.ErrExited), errors.Is(err, usrsvc.ErrNotReady):
		// It was launched, then ended (or was stopped, not ready in
		// time) before it counted as started: supervisord's abnormal
		// termination.
		return fault(faultAbnormalTermination, name+": "+detail(err))
	case errors.Is(err, usrsvc.ErrLaunch), errors.Is(err, usrsvc.ErrNoMatch), errors.Is(err, usrsvc.ErrDisabled),
		errors.Is(err, usrsvc.ErrInvalidConfig):
		return fault(faultSpawnError, name+": "+detail(err))
	}
	return fault(faultFailed, name+": "+detail(err))
}

// detail is err's message without the "op name:" prefix of a ProgramError.
func detail(err error) string {
	var pe *usrsvc.ProgramError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// rpcStart starts one program, its dependencies first; a running one is
// ALREADY_STARTED and is left alone (no manual start is recorded). A
// namespec naming a group starts the group, as supervisord does.
func (h *Handler) rpcStart(ctx context.Context, a []any) (any, error) {
	t, err := h.groups().resolve(str(a, 0))
	if err != nil {
		return nil, err
	}
	if t.whole {
		return h.startResults(ctx, t.names), nil
	}
	name := t.names[0]
	if st, err := h.manager().Do(ctx, usrsvc.ActionStatus, name); err == nil && st.Running {
		return nil, fault(faultAlreadyStarted, name)
	}
	if err := h.startWithDeps(ctx, []string{name})[name]; err != nil {
		return nil, err
	}
	return true, nil
}

// startWithDeps starts the named programs, each after its dependencies
// (depends_on, started too when they do not run), those of one level
// concurrently, and returns the fault of each named one that failed. A
// program whose dependency failed is a SPAWN_ERROR: it was not launched.
func (h *Handler) startWithDeps(ctx context.Context, names []string) map[string]*xmlrpc.Fault {
	cfg := h.config()
	results := h.manager().DoAll(ctx, usrsvc.ActionStart, names, true)
	failed := map[string]error{}
	for _, r := range results {
		switch {
		case r.Err != nil:
			failed[r.Program] = r.Err
		case r.Status != nil && !r.Status.WasRunning:
			h.audit(ctx, "start", r.Program)
		}
	}
	out := map[string]*xmlrpc.Fault{}
	for _, name := range names {
		err, ok := failed[name]
		if !ok {
			continue
		}
		out[name] = opFault(name, err)
		if dep := failedDependency(cfg, name, failed); dep != "" {
			out[name] = fault(faultSpawnError, name+": not started: dependency "+dep+" did not start: "+detail(failed[dep]))
		}
	}
	return out
}

// failedDependency returns a dependency of name (depends_on, a group
// standing for its programs) among failed; "" when none failed.
func failedDependency(cfg *usrsvc.Config, name string, failed map[string]error) string {
	pc := cfg.Program(name)
	if pc == nil {
		return ""
	}
	for _, d := range pc.DependsOn {
		deps := []string{d}
		if m, ok := cfg.Groups[d]; ok && cfg.Program(d) == nil {
			deps = m
		}
		for _, dep := range deps {
			if _, ok := failed[dep]; ok {
				return dep
			}
		}
	}
	return ""
}

// rpcStop stops one program by hand. One that is not running and not
// being retried is NOT_RUNNING and is left alone; one in backoff is
// stopped (recorded as stopped by hand), which ends usrsvcd's retries. A
// namespec naming a group stops the group.
func (h *Handler) rpcStop(ctx context.Context, a []any) (any, error) {
	t, err := h.groups().resolve(str(a, 0))
	if err != nil {
		return nil, err
	}
	if t.whole {
		return h.stopResults(ctx, t.names), nil
	}
	name := t.names[0]
	st, err := h.manager().Do(ctx, usrsvc.ActionStatus, name)
	if err != nil {
		return nil, opFault(name, err)
	}
	if !inRunningState(h.config().Program(name), st) {
		return nil, fault(faultNotRunning, name)
	}
	if h.isSelf(st) {
		return nil, fault(faultFailed, selfStopRefusal(name))
	}
	if _, err := h.manager().Do(ctx, usrsvc.ActionStop, name); err != nil {
		return nil, opFault(name, err)
	}
	h.audit(ctx, "stop", name)
	return true, nil
}

func (h *Handler) rpcSignal(ctx context.Context, a []any) (any, error) {
	t, err := h.groups().resolve(str(a, 0))
	if err != nil {
		return nil, err
	}
	if t.whole {
		return h.signalResults(ctx, t.names, str(a, 1)), nil
	}
	name := t.names[0]
	sig, f := parseSignal(str(a, 1))
	if f != nil {
		return nil, f
	}
	if _, err := h.manager().Signal(ctx, name, sig); err != nil {
		return nil, opFault(name, err)
	}
	h.audit(ctx, "signal", name, "signal", unix.SignalName(sig))
	return true, nil
}

// parseSignal reads a signal as supervisord does: HUP, SIGHUP or 1.
func parseSignal(s string) (syscall.Signal, *xmlrpc.Fault) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		if n > 0 && n < 65 {
			return syscall.Signal(n), nil
		}
		return 0, fault(faultBadSignal, s)
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fault(faultBadSignal, s)
}

// result is one entry of an all-style operation's answer: the program
// as supervisorctl names it (its group, and its name).
func (gi *groupIndex) result(name string, code int, description string) map[string]any {
	return map[string]any{"name": name, "group": gi.groupOf(name), "status": code, "description": description}
}

func (gi *groupIndex) resultOf(name string, f *xmlrpc.Fault) map[string]any {
	if f == nil {
		return gi.result(name, faultSuccess, "OK")
	}
	return gi.result(name, f.Code, f.String)
}

// faultOf is opFault, nil for no error.
func faultOf(name string, err error) *xmlrpc.Fault {
	if err == nil {
		return nil
	}
	return opFault(name, err)
}

// forPrograms runs op on the named programs (nil: every program) whose
// status, read through m, passes pick, concurrently, and returns the
// results in supervisorctl's order (by group, then name). With skipSelf,
// the program that is this server is left alone, its result saying so.
func (h *Handler) forPrograms(ctx context.Context, m *usrsvc.Manager, only []string, pick func(*usrsvc.Program, *usrsvc.Status) bool,
	op func(name string) *xmlrpc.Fault, skipSelf bool) []any {
	if only != nil && len(only) == 0 {
		return []any{}
	}
	cfg := m.Config()
	gi := newGroupIndex(cfg)
	var names []string
	results := m.DoAll(ctx, usrsvc.ActionStatus, only, false)
	self := ""
	if skipSelf {
		self = h.selfIn(results)
	}
	for _, r := range results {
		if pc := cfg.Program(r.Program); pc != nil && r.Status != nil && pick(pc, r.Status) {
			names = append(names, r.Program)
		}
	}
	gi.sortByGroup(names)
	out := make([]any, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		if name == self {
			out[i] = gi.result(name, faultFailed, selfSkipped(name))
			h.log.Info("web: "+name+" skipped: it is this usrsvcweb", "program", name)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = gi.resultOf(name, op(name))
		}()
	}
	wg.Wait()
	return out
}

// startResults starts the enabled programs that do not run (nil: every
// program), each after its dependencies.
func (h *Handler) startResults(ctx context.Context, only []string) []any {
	if only != nil && len(only) == 0 {
		return []any{}
	}
	gi := h.groups()
	var names []string
	for _, r := range h.manager().DoAll(ctx, usrsvc.ActionStatus, only, false) {
		if pc := gi.cfg.Program(r.Program); pc != nil && pc.Enabled && r.Status != nil && !r.Status.Running {
			names = append(names, r.Program)
		}
	}
	if len(names) == 0 {
		return []any{}
	}
	faults := h.startWithDeps(ctx, names)
	gi.sortByGroup(names)
	out := make([]any, len(names))
	for i, name := range names {
		out[i] = gi.resultOf(name, faults[name])
	}
	return out
}

// stopResults stops the programs that run (or are being retried).
func (h *Handler) stopResults(ctx context.Context, only []string) []any {
	return h.stopResultsWith(ctx, h.manager(), only, nil)
}

// stopResultsWith stops, through m, the programs that run (or are being
// retried) and adds those it stopped to stopped (when not nil).
func (h *Handler) stopResultsWith(ctx context.Context, m *usrsvc.Manager, only []string, stopped func(name string)) []any {
	return h.forPrograms(ctx, m, only, inRunningState,
		func(name string) *xmlrpc.Fault {
			_, err := m.Do(ctx, usrsvc.ActionStop, name)
			if err == nil {
				h.audit(ctx, "stop", name)
				if stopped != nil {
					stopped(name)
				}
			}
			return faultOf(name, err)
		}, true)
}

// signalResults signals the programs that run.
func (h *Handler) signalResults(ctx context.Context, only []string, sigName string) []any {
	sig, badSig := parseSignal(sigName)
	return h.forPrograms(ctx, h.manager(), only,
		func(_ *usrsvc.Program, st *usrsvc.Status) bool { return st.Running },
		func(name string) *xmlrpc.Fault {
			if badSig != nil {
				return badSig
			}
			_, err := h.manager().Signal(ctx, name, sig)
			if err == nil {
				h.audit(ctx, "signal", name, "signal", unix.SignalName(sig))
			}
			return faultOf(name, err)
		}, only == nil)
}

// inRunningState reports whether supervisord would count the program as
// running (RUNNING, STARTING or BACKOFF): what stop acts on.
func inRunningState(pc *usrsvc.Program, st *usrsvc.Status) bool {
	switch code, _, _ := processState(pc, st); code {
	case supRunning, supStarting, supBackoff:
		return true
	}
	return false
}

// processState maps usrsvc's view of a program to supervisord's state,
// its spawnerr and exit status.
func processState(pc *usrsvc.Program, st *usrsvc.Status) (code int, spawnerr string, exitstatus int) {
	recState := ""
	if st.State != usrsvc.StateStoppedByHand {
		recState = string(st.State)
	}
	if st.Running {
		if recState == "starting" {
			return supStarting, "", 0
		}
		return supRunning, "", 0
	}
	if e := st.LastExit; e != nil && e.Known {
		if e.Exited {
			exitstatus = e.Status
		} else {
			exitstatus = -1 // killed by a signal, as supervisord reports it
		}
	}
	switch {
	case st.State == usrsvc.StateStoppedByHand:
		return supStopped, "", exitstatus
	case recState == "gave-up":
		reason := "usrsvcd gave up restarting it"
		if st.Reason != "" {
			reason += ": " + st.Reason
		}
		return supFatal, reason, exitstatus
	case recState == "backoff":
		return supBackoff, st.Reason, exitstatus
	case recState == "starting":
		return supStarting, "", exitstatus
	case pc != nil && !pc.Enabled:
		return supStopped, "", exitstatus
	}
	return supExited, "", exitstatus
}

// processInfo is supervisord's process info struct for one program, of
// the supervisorctl group group.
func (h *Handler) processInfo(group string, pc *usrsvc.Program, st *usrsvc.Status) map[string]any {
	now := h.now()
	code, spawnerr, exitstatus := processState(pc, st)
	var start, stop int64
	pid := 0
	if st.Running && st.Process != nil {
		pid = st.Process.PID
		if !st.Process.Started.IsZero() {
			start = st.Process.Started.Unix()
		}
	}
	var stopTime time.Time
	if st.LastExit != nil {
		stopTime = st.LastExit.Time
	}
	if st.State == usrsvc.StateStoppedByHand && pc != nil {
		if t := st.StoppedByHandAt; !t.IsZero() {
			stopTime = t
		}
	}
	if !stopTime.IsZero() {
		stop = stopTime.Unix()
	}
	var stdout, stderr string
	if pc != nil {
		stdout, stderr = pc.Stdout, pc.Stderr
	}
	desc := ""
	switch code {
	case supRunning:
		desc = fmt.Sprintf("pid %d, uptime %s", pid, pyUptime(now.Sub(st.Process.Started)))
		if st.Health == healthUnhealthy {
			desc += ", unhealthy"
			if st.HealthReason != "" {
				desc += ": " + st.HealthReason
			}
		}
	case supStarting:
		desc = "starting"
	case supFatal, supBackoff:
		desc = spawnerr
		if desc == "" {
			desc = fmt.Sprintf("unknown error (try \"tail %s\")", st.Program)
		}
	case supStopped:
		switch {
		case st.State == usrsvc.StateStoppedByHand && !stopTime.IsZero():
			desc = "stopped by hand " + stopTime.Local().Format("Jan 02 03:04 PM")
		case st.State == usrsvc.StateStoppedByHand:
			desc = "stopped by hand"
		case pc != nil && !pc.Enabled:
			desc = "disabled (enabled = false)"
		default:
			desc = "Not started"
		}
	case supExited:
		desc = "not running"
		if e := st.LastExit; e != nil {
			desc = e.Time.Local().Format("Jan 02 03:04 PM")
			if e.Known {
				desc += ", " + exitText(e)
			}
		}
	}
	return map[string]any{
		"name": st.Program, "group": group, "description": desc,
		"start": start, "stop": stop, "now": now.Unix(),
		"state": code, "statename": supStateNames[code], "spawnerr": spawnerr, "exitstatus": exitstatus,
		"logfile": stdout, "stdout_logfile": stdout, "stderr_logfile": stderr, "pid": pid,
	}
}

func exitText(e *usrsvc.ExitStatus) string {
	if e.Exited {
		return fmt.Sprintf("exit status %d", e.Status)
	}
	if name := unix.SignalName(syscall.Signal(e.Signal)); name != "" {
		return "killed by " + name
	}
	return fmt.Sprintf("killed by signal %d", e.Signal)
}

// pyUptime formats d as Python's timedelta does ("1:02:03", "2 days,
// 1:02:03"), which supervisorctl users know.
func pyUptime(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	hms := fmt.Sprintf("%d:%02d:%02d", s/3600, s%3600/60, s%60)
	switch days {
	case 0:
		return hms
	case 1:
		return "1 day, " + hms
	}
	return fmt.Sprintf("%d days, %s", days, hms)
}

// allProcessInfo is getAllProcessInfo: every program, by group then name,
// as supervisord lists them.
func (h *Handler) allProcessInfo(ctx context.Context) []any {
	gi := h.groups()
	results := h.manager().DoAll(ctx, usrsvc.ActionStatus, nil, false)
	slices.SortStableFunc(results, func(a, b usrsvc.Result) int {
		return cmp.Or(strings.Compare(gi.groupOf(a.Program), gi.groupOf(b.Program)), strings.Compare(a.Program, b.Program))
	})
	out := make([]any, 0, len(results))
	for _, r := range results {
		st := r.Status
		if st == nil {
			st = &usrsvc.Status{Program: r.Program}
		}
		out = append(out, h.processInfo(gi.groupOf(r.Program), gi.cfg.Program(r.Program), st))
	}
	return out
}

// allConfigInfo is getAllConfigInfo, with usrsvc's settings under
// supervisord's names, by group then name.
func (h *Handler) allConfigInfo() []any {
	gi := h.groups()
	home, _ := home.Dir()
	names := gi.sortedNames()
	out := make([]any, 0, len(names))
	for _, name := range names {
		pc := gi.cfg.Program(name)
		dir := pc.Dir
		if dir == "" {
			dir = home
		}
		stopSignal := pc.StopSignal
		if stopSignal == 0 {
			stopSignal = syscall.SIGTERM
		}
		exitCodes := []any{}
		for _, c := range pc.ExitCodes {
			exitCodes = append(exitCodes, c)
		}
		if len(exitCodes) == 0 {
			exitCodes = append(exitCodes, 0)
		}
		out = append(out, map[string]any{
			"name": pc.Name, "group": gi.groupOf(pc.Name), "inuse": pc.Enabled, "autostart": pc.Autostart,
			"command": pc.Command, "directory": dir, "uid": os.Getuid(),
			"group_prio": 999, "process_prio": 999, "exitcodes": exitCodes,
			"startsecs": int(pc.SuccessSeconds / time.Second), "startretries": pc.MaxRestarts,
			"stopsignal": int(stopSignal), "stopwaitsecs": int(pc.TermToKill / time.Second),
			"killasgroup": pc.StopGroup, "redirect_stderr": pc.Stderr == pc.Stdout, "serverurl": "AUTO",
			"stdout_logfile": pc.Stdout, "stderr_logfile": pc.Stderr,
			"stdout_logfile_backups": 0, "stderr_logfile_backups": 0,
			"stdout_logfile_maxbytes": 0, "stderr_logfile_maxbytes": 0,
			"stdout_capture_maxbytes": 0, "stderr_capture_maxbytes": 0,
			"stdout_events_enabled": false, "stderr_events_enabled": false,
			"stdout_syslog": false, "stderr_syslog": false,
		})
	}
	return out
}
