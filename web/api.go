package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/exitcode"
)

// apiRoutes registers the JSON API under /api/v1/, which the page itself
// uses. Reads:
//
//	GET  /api/v1/programs                          usrsvcd's status and every program's
//	GET  /api/v1/programs/NAME                     one program, with its resolved configuration
//	GET  /api/v1/programs/NAME/log/STREAM?lines=N  the last N lines of stdout or stderr
//	GET  /api/v1/programs/NAME/log/STREAM/follow   the lines appended from now on (server-sent events)
//	GET  /api/v1/events                            live updates (server-sent events, events.go)
//
// Actions (POST only, refused cross-origin and when read-only):
//
//	POST /api/v1/programs/NAME/start|stop|restart|reload
//	POST /api/v1/reread
//
// Errors are JSON too: {"error": "...", "code": N, "code_name": "..."},
// with usrsvc's return code where one applies.
func (h *Handler) apiRoutes() {
	h.handle("GET /api/v1/programs", h.apiPrograms)
	h.handle("GET /api/v1/programs/{name}", h.apiProgram)
	h.handle("GET /api/v1/programs/{name}/log/{stream}", h.apiLog)
	h.handle("GET /api/v1/programs/{name}/log/{stream}/follow", h.apiFollow)
	h.handleAction("POST /api/v1/programs/{name}/{action}", h.apiAction)
	h.handleAction("POST /api/v1/reread", h.apiReread)
}

// pageMaxAge is how old a reading a page load or GET /api/v1/programs may
// be given (the watcher's, while pages are open); a scrape always reads
// anew.
const pageMaxAge = 500 * time.Millisecond

func (h *Handler) apiPrograms(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.reader.read(r.Context(), pageMaxAge))
}

// programDetail is GET /api/v1/programs/NAME: the program's status and its
// resolved configuration.
type programDetail struct {
	*programView
	Config configEntries `json:"config"`
	// Logs names the program's log files.
	Logs map[string]string `json:"logs"`
}

func (h *Handler) apiProgram(w http.ResponseWriter, r *http.Request) {
	pc, ok := h.lookup(w, r, r.PathValue("name"))
	if !ok {
		return
	}
	d, err := h.detail(r.Context(), pc)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// detail reads one program's status now.
func (h *Handler) detail(ctx context.Context, pc *usrsvc.Program) (*programDetail, error) {
	st, err := h.manager().Do(ctx, usrsvc.ActionStatus, pc.Name)
	res := usrsvc.Result{Program: pc.Name, Action: usrsvc.ActionStatus, Status: st, Err: err, Time: h.now()}
	v := newProgramView(pc, res, h.now())
	v.Self = h.isSelf(st)
	if v.Running && v.PID > 0 {
		h.reader.readMemory([]*programView{v})
	}
	return &programDetail{programView: v, Config: resolvedConfig(pc),
		Logs: map[string]string{streamStdout: pc.Stdout, streamStderr: pc.Stderr}}, nil
}

// logTail is GET /api/v1/programs/NAME/log/STREAM.
type logTail struct {
	Program string   `json:"program"`
	Stream  string   `json:"stream"`
	Path    string   `json:"path"`
	Lines   []string `json:"lines"`
	// Offset is the file's size when read: where a follow starts.
	Offset int64 `json:"offset"`
	// SameAsStdout is true for stderr when it goes to the stdout file.
	SameAsStdout bool `json:"same_as_stdout,omitempty"`
}

func (h *Handler) apiLog(w http.ResponseWriter, r *http.Request) {
	pc, ok := h.lookup(w, r, r.PathValue("name"))
	if !ok {
		return
	}
	n := defaultTailLines
	if s := r.URL.Query().Get("lines"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > maxTailLines {
			writeErrorMsg(w, http.StatusBadRequest, exitcode.InvalidAction,
				fmt.Sprintf("lines=%q: give a number of lines from 1 to %d", s, maxTailLines))
			return
		}
		n = v
	}
	t, err := h.tail(r.Context(), pc, r.PathValue("stream"), n)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// tail reads the last n lines of one of pc's log files.
func (h *Handler) tail(ctx context.Context, pc *usrsvc.Program, stream string, n int) (*logTail, error) {
	path, same, err := logPath(pc, stream)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotFound, err)
	}
	release, ok := h.acquireLogSlot(ctx)
	if !ok {
		return nil, ctx.Err()
	}
	defer release()
	lines, end, err := tailFile(path, n)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", usrsvc.ErrPermission, path, err)
	}
	if lines == nil {
		lines = []string{}
	}
	return &logTail{Program: pc.Name, Stream: stream, Path: path, Lines: lines, Offset: end, SameAsStdout: same}, nil
}

// apiFollow streams the lines appended to a log file as server-sent
// events: each "lines" event carries {"lines": [...]} and, as its id, the
// offset after them. ?offset=N starts after byte N (the offset of a tail
// just read), else at the end; a reconnecting browser's Last-Event-ID
// wins.
func (h *Handler) apiFollow(w http.ResponseWriter, r *http.Request) {
	pc, ok := h.lookup(w, r, r.PathValue("name"))
	if !ok {
		return
	}
	stream := r.PathValue("stream")
	path, _, err := logPath(pc, stream)
	if err != nil {
		writeErrorMsg(w, http.StatusNotFound, exitcode.InvalidAction, err.Error())
		return
	}
	from := r.URL.Query().Get("offset")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		from = id // a browser reconnecting: go on after the last lines it got
	}
	offset, _, err := parseOffset(from)
	if err != nil {
		writeErrorMsg(w, http.StatusBadRequest, exitcode.InvalidAction, err.Error())
		return
	}
	if offset < 0 {
		_, offset, _ = tailFile(path, 0)
	}
	release, ok := h.acquireStream(w, r)
	if !ok {
		return
	}
	defer release()
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported by this connection", http.StatusInternalServerError)
		return
	}
	startSSE(w)
	flusher.Flush()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(h.ctx, cancel) // Close ends the stream
	defer stop()
	_ = followFile(ctx, path, offset, func(lines []string, next int64) error {
		ev := sseEvent{name: "lines", data: mustJSON(map[string][]string{"lines": lines}), id: offsetID(next)}
		if err := writeEvent(w, ev); err != nil {
			return err
		}
		flusher.Flush()
		return nil
	})
}

// actionResult is the answer to POST /api/v1/programs/NAME/ACTION.
type actionResult struct {
	Program  string       `json:"program"`
	Action   string       `json:"action"`
	OK       bool         `json:"ok"`
	Code     int          `json:"code"`
	CodeName string       `json:"code_name"`
	Message  string       `json:"message"`
	Status   *programView `json:"status,omitempty"`
}

// apiAction is POST /api/v1/programs/NAME/ACTION. ?force=true stops the
// program that is this server itself (see self.go), which is otherwise
// refused.
func (h *Handler) apiAction(w http.ResponseWriter, r *http.Request) {
	force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
	res, status := h.act(r.Context(), r.PathValue("name"), r.PathValue("action"), force)
	writeJSON(w, status, res)
}

// act runs a start, stop, restart or reload on one program, as usrsvc
// would (a start or restart starts its dependencies first when they do
// not run; a stop is a manual stop: usrsvcd leaves the program stopped
// until a start; a reload sends its reload_signal), and returns its
// outcome with the HTTP status that fits.
func (h *Handler) act(ctx context.Context, name, action string, force bool) (*actionResult, int) {
	res := &actionResult{Program: name, Action: action}
	switch usrsvc.Action(action) {
	case usrsvc.ActionStart, usrsvc.ActionStop, usrsvc.ActionRestart, usrsvc.ActionReload:
	default:
		res.Code, res.CodeName = int(exitcode.InvalidAction), exitcode.InvalidAction.String()
		res.Message = fmt.Sprintf("unknown action %q: use start, stop, restart or reload", action)
		return res, http.StatusNotFound
	}
	if a := usrsvc.Action(action); (a == usrsvc.ActionStop || a == usrsvc.ActionRestart) && !force {
		if st, err := h.manager().Do(ctx, usrsvc.ActionStatus, name); err == nil && h.isSelf(st) {
			return h.actOnSelf(ctx, res, a)
		}
	}
	// The operation goes on if the browser goes away: a half-done start
	// or stop helps nobody.
	st, err := h.do(context.WithoutCancel(ctx), usrsvc.Action(action), name)
	h.reader.changed()
	h.hub.trigger()
	code := exitcode.Of(err)
	res.OK, res.Code, res.CodeName = err == nil, int(code), code.String()
	if st != nil {
		res.Message = st.Message
	}
	if err != nil {
		res.Message = err.Error()
		h.log.Warn("web: "+action+" failed", "program", name, "error", err)
	} else {
		h.audit(ctx, action, name, "message", res.Message)
	}
	if pc := h.config().Program(name); pc != nil && st != nil {
		res.Status = newProgramView(pc, usrsvc.Result{Program: name, Action: usrsvc.Action(action), Status: st, Err: err, Time: h.now()}, h.now())
	}
	return res, httpStatus(err)
}

// do runs action on the program name: a start or restart with its
// dependencies (those that do not run are started first), as usrsvc
// start does; the others on the program alone.
func (h *Handler) do(ctx context.Context, action usrsvc.Action, name string) (*usrsvc.Status, error) {
	if (action != usrsvc.ActionStart && action != usrsvc.ActionRestart) || h.config().Program(name) == nil {
		return h.manager().Do(ctx, action, name)
	}
	var own usrsvc.Result
	for _, r := range h.manager().DoAll(ctx, action, []string{name}, true) {
		if r.Program == name {
			own = r
		} else if r.Err == nil && r.Status != nil && !r.Status.WasRunning {
			h.audit(ctx, "start", r.Program, "as", "a dependency of "+name)
		}
	}
	if own.Status == nil {
		own.Status = &usrsvc.Status{Program: name}
	}
	return own.Status, own.Err
}

// actOnSelf answers a stop or restart of the program that is this server:
// a stop is refused; a restart answers, then ends this server for usrsvcd
// to start it again, when usrsvcd will.
func (h *Handler) actOnSelf(ctx context.Context, res *actionResult, a usrsvc.Action) (*actionResult, int) {
	why := ""
	if a == usrsvc.ActionStop {
		why = selfStopRefusal(res.Program)
	} else {
		why = h.canRestartSelf(ctx, res.Program)
	}
	if why != "" {
		res.Code, res.CodeName, res.Message = int(exitcode.GeneralFailure), exitcode.GeneralFailure.String(), why
		h.log.Warn("web: "+string(a)+" refused", "program", res.Program, "reason", why)
		return res, http.StatusConflict
	}
	res.OK, res.Code, res.CodeName = true, int(exitcode.Success), exitcode.Success.String()
	res.Message = "restarting: this usrsvcweb ends now, and usrsvcd starts it again within seconds"
	h.audit(ctx, string(a), res.Program, "how", "exit, for usrsvcd to start it again")
	// After the answer has gone out.
	time.AfterFunc(selfRestartDelay, h.opts.RestartSelf)
	return res, http.StatusOK
}

// selfRestartDelay lets the answer to a restart of self reach its client
// before the server ends.
const selfRestartDelay = 300 * time.Millisecond

// adoptConfig loads the configuration again and puts it in force here,
// after usrsvcd reread it; it asks usrsvcd nothing. A configuration that
// does not load here is logged and the one in force kept.
func (h *Handler) adoptConfig(ctx context.Context) {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	h.adoptConfigLocked(ctx)
}

// adoptConfigLocked is adoptConfig with reloadMu held.
func (h *Handler) adoptConfigLocked(ctx context.Context) {
	old := h.config()
	cfg, err := usrsvc.LoadConfig(old.Path)
	if err == nil {
		err = h.manager().Reload(ctx, cfg)
	}
	if err != nil {
		h.log.Warn("usrsvcd reread its configuration, but it does not load here; keeping the one in force", "error", err)
		return
	}
	added, changed, removed := diffConfigs(old, cfg)
	h.log.Info("configuration reread by usrsvcd put in force", "programs", len(cfg.Programs),
		"added", added, "changed", changed, "removed", removed)
	h.reader.changed()
	h.hub.trigger()
}

// rereadResult is the answer to POST /api/v1/reread.
type rereadResult struct {
	OK      bool     `json:"ok"`
	Message string   `json:"message"`
	Added   []string `json:"added,omitempty"`
	Changed []string `json:"changed,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

func (h *Handler) apiReread(w http.ResponseWriter, r *http.Request) {
	out, err := h.reread(r.Context())
	h.reader.changed()
	h.hub.trigger()
	if err == nil {
		h.audit(r.Context(), "reread", "", "message", out.Message)
	}
	res := &rereadResult{OK: err == nil}
	if out != nil {
		res.Message, res.Added, res.Changed, res.Removed = out.Message, out.Added, out.Changed, out.Removed
	}
	if err != nil {
		res.Message = err.Error()
		writeJSON(w, http.StatusUnprocessableEntity, res)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// errNotFound: no such route object (a log stream other than stdout and
// stderr).
var errNotFound = errors.New("not found")

// lookup finds the program named in the request's path; it answers 404
// (with the closest name) itself when there is none.
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request, name string) (*usrsvc.Program, bool) {
	if pc := h.config().Program(name); pc != nil {
		return pc, true
	}
	// The library's error names the closest defined program.
	_, err := h.manager().Do(r.Context(), usrsvc.ActionStatus, name)
	if err == nil {
		err = fmt.Errorf("%w: no program named %q is configured", usrsvc.ErrUndefined, name)
	}
	writeError(w, err)
	return nil, false
}

// httpStatus is the HTTP status of an operation's error.
func httpStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, errNotFound), errors.Is(err, usrsvc.ErrUndefined):
		return http.StatusNotFound
	case errors.Is(err, usrsvc.ErrLocked):
		return http.StatusServiceUnavailable
	case errors.Is(err, usrsvc.ErrPermission), exitcode.Of(err) == exitcode.UnknownFailure:
		return http.StatusInternalServerError
	}
	// The program's own failure (disabled, exited, failed to launch, no
	// match): the request was right, the program is not.
	return http.StatusConflict
}

// apiError is the JSON body of an error answer.
type apiError struct {
	Error    string `json:"error"`
	Code     int    `json:"code"`
	CodeName string `json:"code_name"`
}

func writeError(w http.ResponseWriter, err error) {
	code := exitcode.Of(err)
	if errors.Is(err, errNotFound) {
		code = exitcode.InvalidAction
	}
	writeErrorMsg(w, httpStatus(err), code, err.Error())
}

func writeErrorMsg(w http.ResponseWriter, status int, code exitcode.Code, msg string) {
	writeJSON(w, status, apiError{Error: msg, Code: int(code), CodeName: code.String()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
