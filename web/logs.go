package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/logfile"
	"github.com/usrsvc/usrsvc/internal/xmlrpc"
)

// MaxLogRead bounds what one log read returns: a client asking for a
// whole 1 GB file gets its last (or first) MiB.
const MaxLogRead = 1 << 20

// tailHead is how much of the end of a log a tail -f stream starts with
// (what supervisord sends).
const tailHead = 1024

// logMethods are the supervisor.* methods that read or clear logs.
func (h *Handler) logMethods() map[string]rpcMethod {
	read := func(channel string) func(context.Context, []any) (any, error) {
		return func(_ context.Context, a []any) (any, error) {
			path, err := h.programLog(str(a, 0), channel)
			if err != nil {
				return nil, err
			}
			return readLogRange(path, a[1:])
		}
	}
	tail := func(channel string) func(context.Context, []any) (any, error) {
		return func(_ context.Context, a []any) (any, error) {
			path, err := h.programLog(str(a, 0), channel)
			if err != nil {
				return nil, err
			}
			return tailLog(path, a[1:])
		}
	}
	readHelp := "Read LENGTH bytes of the program NAME's %s file from OFFSET; a negative OFFSET with LENGTH 0 reads " +
		"the last -OFFSET bytes. At most 1 MiB is returned."
	tailHelp := "Return [bytes, offset, overflow]: up to LENGTH bytes of the program NAME's %s file from OFFSET; " +
		"when the file grew past OFFSET+LENGTH, its last LENGTH bytes and overflow = true. At most 1 MiB."
	return map[string]rpcMethod{
		"supervisor.readProcessStdoutLog": {sig: []string{"string", "string", "int", "int"}, help: fmt.Sprintf(readHelp, "stdout"), fn: read("stdout")},
		"supervisor.readProcessLog":       {sig: []string{"string", "string", "int", "int"}, help: "Alias of readProcessStdoutLog.", fn: read("stdout")},
		"supervisor.readProcessStderrLog": {sig: []string{"string", "string", "int", "int"}, help: fmt.Sprintf(readHelp, "stderr"), fn: read("stderr")},
		"supervisor.tailProcessStdoutLog": {sig: []string{"array", "string", "int", "int"}, help: fmt.Sprintf(tailHelp, "stdout"), fn: tail("stdout")},
		"supervisor.tailProcessLog":       {sig: []string{"array", "string", "int", "int"}, help: "Alias of tailProcessStdoutLog.", fn: tail("stdout")},
		"supervisor.tailProcessStderrLog": {sig: []string{"array", "string", "int", "int"}, help: fmt.Sprintf(tailHelp, "stderr"), fn: tail("stderr")},
		"supervisor.readLog": {sig: []string{"string", "int", "int"},
			help: "Read LENGTH bytes of usrsvcd's log from OFFSET (negative: from its end), at most 1 MiB.",
			fn: func(_ context.Context, a []any) (any, error) {
				path, err := h.daemonLog()
				if err != nil {
					return nil, err
				}
				return readLogRange(path, a)
			}},
		"supervisor.clearProcessLogs": {sig: []string{"boolean", "string"}, changes: true,
			help: "Empty the program NAME's stdout and stderr files (truncated in place: the program goes on appending).",
			fn: func(ctx context.Context, a []any) (any, error) {
				name, err := h.programName(str(a, 0))
				if err != nil {
					return nil, err
				}
				if f := h.clearLogs(ctx, name); f != nil {
					return nil, f
				}
				return true, nil
			}},
		"supervisor.clearAllProcessLogs": {sig: []string{"array"}, changes: true,
			help: "Empty every program's stdout and stderr files; return an array of result structs.",
			fn: func(ctx context.Context, _ []any) (any, error) {
				gi := h.groups()
				names := gi.sortedNames()
				out := make([]any, 0, len(names))
				for _, name := range names {
					out = append(out, gi.resultOf(name, h.clearLogs(ctx, name)))
				}
				return out, nil
			}},
	}
}

// programLog returns the configured file of a program's channel (stdout
// or stderr): the name is looked up in the configuration, never used as a
// path.
func (h *Handler) programLog(spec, channel string) (string, error) {
	name, err := h.programName(spec)
	if err != nil {
		return "", err
	}
	pc := h.config().Program(name)
	if pc == nil {
		return "", opFault(name, fmt.Errorf("%w: no program named %q", usrsvc.ErrUndefined, name))
	}
	switch channel {
	case "stdout":
		return pc.Stdout, nil
	case "stderr":
		return pc.Stderr, nil
	}
	return "", opFault(name, fmt.Errorf("%w: unknown stream %q (use stdout or stderr)", usrsvc.ErrInvalidAction, channel))
}

// daemonLog is usrsvcd's log file: usrsvcd_stdout, else the file a
// detached usrsvcd writes in the state directory. A usrsvcd in the
// foreground without usrsvcd_stdout logs to its stderr (the journal):
// NO_FILE then.
func (h *Handler) daemonLog() (string, error) {
	cfg := h.config()
	if p := cfg.DaemonStdout; p != "" {
		return p, nil
	}
	p := filepath.Join(cfg.StateDir, "usrsvcd.log")
	if _, err := os.Stat(p); err != nil {
		return "", fault(faultNoFile, "usrsvcd logs to its stderr (set usrsvcd_stdout in [Main] to read it here)")
	}
	return p, nil
}

// readLogRange is supervisord's readFile over a bounded read: args are
// (offset, length).
func readLogRange(path string, args []any) (any, error) {
	offset, ok1 := integer(args, 0)
	length, ok2 := integer(args, 1)
	if !ok1 || !ok2 {
		return nil, fault(faultIncorrectParameters, "offset and length must be integers")
	}
	var data []byte
	var err error
	switch {
	case offset < 0:
		if length != 0 {
			return nil, fault(faultBadArguments, "a negative offset reads from the end: length must be 0")
		}
		data, _, err = logfile.ReadEnd(path, min(-offset, MaxLogRead))
	case length < 0:
		return nil, fault(faultBadArguments, "length must not be negative")
	default:
		if length == 0 || length > MaxLogRead {
			length = MaxLogRead
		}
		data, _, err = logfile.ReadRange(path, offset, length)
	}
	if err != nil {
		return nil, logFault(path, err)
	}
	return string(data), nil
}

// tailLog is supervisord's tailFile over a bounded read: args are
// (offset, length); it answers [bytes, offset, overflow].
func tailLog(path string, args []any) (any, error) {
	offset, ok1 := integer(args, 0)
	length, ok2 := integer(args, 1)
	if !ok1 || !ok2 {
		return nil, fault(faultIncorrectParameters, "offset and length must be integers")
	}
	length = min(max(length, 0), MaxLogRead)
	f, fi, err := logfile.OpenRead(path)
	if errors.Is(err, os.ErrNotExist) {
		return []any{"", 0, false}, nil // as supervisord: no file yet is an empty tail
	}
	if err != nil {
		return nil, logFault(path, err)
	}
	defer f.Close()
	size := fi.Size()
	overflow := false
	if size > offset+length {
		overflow = true
		offset = size - 1
	}
	if offset+length > size {
		if offset > size-1 {
			length = 0
		}
		offset = size - length
	}
	offset = max(offset, 0)
	data := make([]byte, length)
	if length > 0 {
		k, err := f.ReadAt(data, offset)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, logFault(path, err)
		}
		data = data[:k]
	}
	return []any{string(data), size, overflow}, nil
}

func logFault(path string, err error) *xmlrpc.Fault {
	if errors.Is(err, os.ErrNotExist) {
		return fault(faultNoFile, path)
	}
	return fault(faultFailed, err.Error())
}

// clearLogs truncates a program's log files in place: each is opened
// without following a symbolic link, checked to be a regular file, and
// truncated through that descriptor (ftruncate), so a link or a file
// swapped in meanwhile is never what is emptied.
func (h *Handler) clearLogs(ctx context.Context, name string) *xmlrpc.Fault {
	pc := h.config().Program(name)
	for _, p := range []string{pc.Stdout, pc.Stderr} {
		f, err := logfile.OpenWrite(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = f.Truncate(0)
			f.Close()
		}
		if err != nil {
			return fault(faultFailed, err.Error()+": not cleared")
		}
	}
	h.audit(ctx, "clear logs", name)
	return nil
}

// serveLogtail streams a program's log as it grows (supervisorctl tail
// -f): GET /logtail/NAME[/stdout|stderr].
func (h *Handler) serveLogtail(w http.ResponseWriter, r *http.Request) {
	channel := r.PathValue("channel")
	if channel == "" {
		channel = "stdout"
	}
	if channel != "stdout" && channel != "stderr" {
		http.Error(w, "no such channel: use stdout or stderr", http.StatusNotFound)
		return
	}
	path, err := h.programLog(r.PathValue("name"), channel)
	if err != nil {
		http.Error(w, "no such program: "+r.PathValue("name"), http.StatusNotFound)
		return
	}
	h.streamFile(w, r, path)
}

// serveMainLogtail streams usrsvcd's log (supervisorctl maintail -f).
func (h *Handler) serveMainLogtail(w http.ResponseWriter, r *http.Request) {
	path, err := h.daemonLog()
	if err != nil {
		http.Error(w, err.(*xmlrpc.Fault).String, http.StatusNotFound)
		return
	}
	h.streamFile(w, r, path)
}

// streamFile sends the end of path, then what is appended to it, until
// the client goes or the handler closes.
func (h *Handler) streamFile(w http.ResponseWriter, r *http.Request, path string) {
	f, fi, err := logfile.OpenRead(path)
	if err != nil {
		// supervisord answers 404 too: a log appears with the program.
		http.Error(w, "no log file yet: "+err.Error(), http.StatusNotFound)
		return
	}
	f.Close()
	size := fi.Size()
	release, ok := h.acquireStream(w, r)
	if !ok {
		return
	}
	defer release()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	ctx, cancel := h.streamContext(r)
	defer cancel()
	err = logfile.Follow(ctx, path, max(size-tailHead, 0), w, logfile.FollowOptions{
		Flush: func() { rc.Flush() },
	})
	if err != nil && ctx.Err() == nil {
		h.log.Debug("log stream ended", "path", path, "err", err)
	}
}
