package web

import (
	"context"
	"errors"
	"fmt"
	"os"
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
		"supervisor.getProcessInfo": {sig: []string{"struct", "string"}, help: "Return the process info struct of the program NAME (or NAME:NAME).",
			fn: func(ctx context.Context, a []any) (any, error) {
				name, err := h.programName(str(a, 0))
				if err != nil {
					return nil, err
				}
				st, err := h.manager().Do(ctx, usrsvc.ActionStatus, name)
				if err != nil && !errors.Is(err, usrsvc.ErrNotRunning) {
					return nil, opFault(name, err)
				}
				return h.processInfo(h.config().Program(name), st), nil
			}},
		"supervisor.getAllConfigInfo": {sig: []string{"array"}, help: "Return an array of config info structs, one per program.",
			fn: func(context.Context, []any) (any, error) { return h.allConfigInfo(), nil }},
		"supervisor.startProcess": {sig: []string{"boolean", "string", "boolean"}, optional: 1, changes: true,
			help: "Start the program NAME (NAME:* starts its group, which is the program) and wait for its success_seconds. " +
				"The optional wait is accepted and ignored: a start always waits.",
			fn: h.rpcStart},
		"supervisor.startProcessGroup": {sig: []string{"array", "string", "boolean"}, optional: 1, changes: true,
			help: "Start the group NAME (the program of that name); return an array of result structs.",
			fn:   func(ctx context.Context, a []any) (any, error) { return h.groupOp(ctx, str(a, 0), h.startResults) }},
		"supervisor.startAllProcesses": {sig: []string{"array", "boolean"}, optional: 1, changes: true,
			help: "Start every enabled program that is not running, concurrently; return an array of result structs.",
			fn:   func(ctx context.Context, _ []any) (any, error) { return h.startResults(ctx, nil), nil }},
		"supervisor.stopProcess": {sig: []string{"boolean", "string", "boolean"}, optional: 1, changes: true,
			help: "Stop the program NAME by hand (usrsvcd leaves it stopped until a start), waiting until it is gone.",
			fn:   h.rpcStop},
		"supervisor.stopProcessGroup": {sig: []string{"array", "string", "boolean"}, optional: 1, changes: true,
			help: "Stop the group NAME (the program of that name); return an array of result structs.",
			fn:   func(ctx context.Context, a []any) (any, error) { return h.groupOp(ctx, str(a, 0), h.stopResults) }},
		"supervisor.stopAllProcesses": {sig: []string{"array", "boolean"}, optional: 1, changes: true,
			help: "Stop every running program by hand, concurrently; return an array of result structs.",
			fn:   func(ctx context.Context, _ []any) (any, error) { return h.stopResults(ctx, nil), nil }},
		"supervisor.signalProcess": {sig: []string{"boolean", "string", "string"}, changes: true,
			help: "Send the signal SIG (a name such as HUP or SIGHUP, or a number) to the program NAME.",
			fn:   h.rpcSignal},
		"supervisor.signalProcessGroup": {sig: []string{"array", "string", "string"}, changes: true,
			help: "Send a signal to the group NAME (the program of that name); return an array of result structs.",
			fn: func(ctx context.Context, a []any) (any, error) {
				sig := str(a, 1)
				return h.groupOp(ctx, str(a, 0), func(ctx context.Context, only []string) []any { return h.signalResults(ctx, only, sig) })
			}},
		"supervisor.signalAllProcesses": {sig: []string{"array", "string"}, changes: true,
			help: "Send a signal to every running program; return an array of result structs.",
			fn:   func(ctx context.Context, a []any) (any, error) { return h.signalResults(ctx, nil, str(a, 0)), nil }},
		"supervisor.reloadConfig": {sig: []string{"array"}, changes: true,
			help: "Load the configuration again (and make a running usrsvcd reread it); return [[added, changed, removed]]. " +
				"Added are the programs configured that no addProcessGroup (supervisorctl update) has added yet, " +
				"whoever reread them; changed and removed are always empty: usrsvc never stops or restarts a program for a " +
				"config change, and supervisorctl update would stop the changed and removed ones. Nothing is restarted.",
			fn: h.rpcReloadConfig},
		"supervisor.addProcessGroup": {sig: []string{"boolean", "string"}, changes: true,
			help: "Mark the configured program NAME as added (supervisorctl update, after reloadConfig listed it); nothing is started.",
			fn: func(ctx context.Context, a []any) (any, error) {
				name, err := h.programName(str(a, 0))
				if err != nil {
					return nil, err
				}
				h.knownMu.Lock()
				h.known[name] = true
				h.knownMu.Unlock()
				h.audit(ctx, "add process group", name)
				return true, nil
			}},
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

// programName resolves a supervisord namespec (NAME, NAME:NAME or NAME:*;
// every group is one program of the same name) to a configured program's
// name, or a BAD_NAME fault.
func (h *Handler) programName(spec string) (string, error) {
	group, proc, hasProc := strings.Cut(spec, ":")
	if hasProc && proc != "" && proc != "*" && proc != group {
		return "", fault(faultBadName, spec)
	}
	if h.config().Program(group) == nil {
		return "", fault(faultBadName, spec)
	}
	return group, nil
}

// groupOp runs an all-style operation on the group spec (one program).
func (h *Handler) groupOp(ctx context.Context, spec string, op func(context.Context, []string) []any) (any, error) {
	name, err := h.programName(spec)
	if err != nil {
		return nil, err
	}
	return op(ctx, []string{name}), nil
}

// opFault maps a library error to supervisord's fault.
func opFault(name string, err error) *xmlrpc.Fault {
	switch {
	case errors.Is(err, usrsvc.ErrUndefined):
		return fault(faultBadName, name)
	case errors.Is(err, usrsvc.ErrNotRunning):
		return fault(faultNotRunning, name)
	case errors.Is(err, usrsvc.ErrExited):
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

// rpcStart starts one program; a running one is ALREADY_STARTED and is
// left alone (no manual start is recorded).
func (h *Handler) rpcStart(ctx context.Context, a []any) (any, error) {
	name, err := h.programName(str(a, 0))
	if err != nil {
		return nil, err
	}
	if st, err := h.manager().Do(ctx, usrsvc.ActionStatus, name); err == nil && st.Running {
		return nil, fault(faultAlreadyStarted, name)
	}
	if _, err := h.manager().Do(ctx, usrsvc.ActionStart, name); err != nil {
		return nil, opFault(name, err)
	}
	h.audit(ctx, "start", name)
	return true, nil
}

// rpcStop stops one program by hand. One that is not running and not
// being retried is NOT_RUNNING and is left alone; one in backoff is
// stopped (recorded as stopped by hand), which ends usrsvcd's retries.
func (h *Handler) rpcStop(ctx context.Context, a []any) (any, error) {
	name, err := h.programName(str(a, 0))
	if err != nil {
		return nil, err
	}
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
	name, err := h.programName(str(a, 0))
	if err != nil {
		return nil, err
	}
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

// result is one entry of an all-style operation's answer.
func result(name string, code int, description string) map[string]any {
	return map[string]any{"name": name, "group": name, "status": code, "description": description}
}

func resultOf(name string, err error) map[string]any {
	if err == nil {
		return result(name, faultSuccess, "OK")
	}
	f := opFault(name, err)
	return result(name, f.Code, f.String)
}

// forPrograms runs op on the named programs (nil: every program whose
// status passes pick), concurrently, and returns the results in name order.
// With skipSelf, the program that is this server is left alone, its
// result saying so.
func (h *Handler) forPrograms(ctx context.Context, only []string, pick func(*usrsvc.Program, *usrsvc.Status) bool,
	op func(name string) map[string]any, skipSelf bool) []any {
	var names []string
	results := h.manager().DoAll(ctx, usrsvc.ActionStatus, nil, false)
	self := ""
	if skipSelf {
		self = h.selfIn(results)
	}
	for _, r := range results {
		if only != nil && !contains(only, r.Program) {
			continue
		}
		if pc := h.config().Program(r.Program); pc != nil && r.Status != nil && pick(pc, r.Status) {
			names = append(names, r.Program)
		}
	}
	out := make([]any, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		if name == self {
			out[i] = result(name, faultFailed, selfSkipped(name))
			h.log.Info("web: "+name+" skipped: it is this usrsvcweb", "program", name)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = op(name)
		}()
	}
	wg.Wait()
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// startResults starts the enabled programs that are not running.
func (h *Handler) startResults(ctx context.Context, only []string) []any {
	return h.forPrograms(ctx, only,
		func(pc *usrsvc.Program, st *usrsvc.Status) bool { return pc.Enabled && !st.Running },
		func(name string) map[string]any {
			_, err := h.manager().Do(ctx, usrsvc.ActionStart, name)
			if err == nil {
				h.audit(ctx, "start", name)
			}
			return resultOf(name, err)
		}, false)
}

// stopResults stops the programs that run (or are being retried).
func (h *Handler) stopResults(ctx context.Context, only []string) []any {
	return h.forPrograms(ctx, only, inRunningState,
		func(name string) map[string]any {
			_, err := h.manager().Do(ctx, usrsvc.ActionStop, name)
			if err == nil {
				h.audit(ctx, "stop", name)
			}
			return resultOf(name, err)
		}, true)
}

// signalResults signals the programs that run.
func (h *Handler) signalResults(ctx context.Context, only []string, sigName string) []any {
	sig, badSig := parseSignal(sigName)
	return h.forPrograms(ctx, only,
		func(_ *usrsvc.Program, st *usrsvc.Status) bool { return st.Running },
		func(name string) map[string]any {
			if badSig != nil {
				return result(name, badSig.Code, badSig.String)
			}
			_, err := h.manager().Signal(ctx, name, sig)
			if err == nil {
				h.audit(ctx, "signal", name, "signal", unix.SignalName(sig))
			}
			return resultOf(name, err)
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

// rpcReloadConfig rereads the configuration. Only added programs are
// reported (see the method's help).
func (h *Handler) rpcReloadConfig(ctx context.Context, _ []any) (any, error) {
	out, err := h.reread(ctx)
	if err != nil {
		return nil, fault(faultCantReread, err.Error())
	}
	h.audit(ctx, "reread", "", "message", out.Message, "added", out.Added, "changed", out.Changed, "removed", out.Removed)
	return []any{[]any{h.notYetAdded(), []string{}, []string{}}}, nil
}

// notYetAdded lists the programs configured that no addProcessGroup added
// yet, whether this server, usrsvcd or the page reread them: as
// supervisord, reread lists them "available" and update adds them
// ("added process group") until one did. A program no longer configured
// is forgotten, so that configuring it again lists it again.
func (h *Handler) notYetAdded() []string {
	cfg := h.config()
	h.knownMu.Lock()
	defer h.knownMu.Unlock()
	added := []string{}
	inConfig := map[string]bool{}
	for _, pc := range cfg.Programs {
		inConfig[pc.Name] = true
		if !h.known[pc.Name] {
			added = append(added, pc.Name)
		}
	}
	for name := range h.known {
		if !inConfig[name] {
			delete(h.known, name)
		}
	}
	return added
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

// processInfo is supervisord's process info struct for one program.
func (h *Handler) processInfo(pc *usrsvc.Program, st *usrsvc.Status) map[string]any {
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
		"name": st.Program, "group": st.Program, "description": desc,
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

// allProcessInfo is getAllProcessInfo: every program, in name order.
func (h *Handler) allProcessInfo(ctx context.Context) []any {
	cfg := h.config()
	results := h.manager().DoAll(ctx, usrsvc.ActionStatus, nil, false)
	out := make([]any, 0, len(results))
	for _, r := range results {
		st := r.Status
		if st == nil {
			st = &usrsvc.Status{Program: r.Program}
		}
		out = append(out, h.processInfo(cfg.Program(r.Program), st))
	}
	return out
}

// allConfigInfo is getAllConfigInfo, with usrsvc's settings under
// supervisord's names.
func (h *Handler) allConfigInfo() []any {
	cfg := h.config()
	home, _ := home.Dir()
	out := make([]any, 0, len(cfg.Programs))
	for _, pc := range cfg.Programs {
		dir := pc.Dir
		if dir == "" {
			dir = home
		}
		out = append(out, map[string]any{
			"name": pc.Name, "group": pc.Name, "inuse": pc.Enabled, "autostart": pc.Autostart,
			"command": pc.Command, "directory": dir, "uid": os.Getuid(),
			"group_prio": 999, "process_prio": 999, "exitcodes": []any{0},
			"startsecs": int(pc.SuccessSeconds / time.Second), "startretries": pc.MaxRestarts,
			"stopsignal": int(syscall.SIGTERM), "stopwaitsecs": int(pc.TermToKill / time.Second),
			"killasgroup": false, "redirect_stderr": pc.Stderr == pc.Stdout, "serverurl": "AUTO",
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
