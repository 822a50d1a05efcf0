package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/exitcode"
)

// eventRoutes registers the server-sent events stream the page follows
// for live updates, at /api/v1/events (and /events, its short name).
//
// Each client first gets a "snapshot" event (the whole state, as GET
// /api/v1/programs), then a "program" event with a program's new state
// whenever it changes, a "daemon" event when usrsvcd's does, and a
// "removed" event when a reread removed a program. With ?program=NAME it
// also gets "log" events with the lines appended to NAME's stdout and
// stderr (see logFollow): a program's page needs one connection, since a
// browser opens at most six to one server. One watcher serves
// every client and runs only while one is connected (see watch.go); the
// streams come from the one pool of streams.go (503 beyond), and every
// stream ends when the handler is closed.
func (h *Handler) eventRoutes() {
	h.handle("GET /api/v1/events", h.serveEvents)
	h.handle("GET /events", h.serveEvents)
}

// keepAlive is how often an idle stream sends a comment, so proxies and
// browsers keep the connection.
const keepAlive = 25 * time.Second

func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	var logs *logFollow
	if name := r.URL.Query().Get("program"); name != "" {
		pc, ok := h.lookup(w, r, name)
		if !ok {
			return
		}
		var err error
		if logs, err = newLogFollow(pc, r); err != nil {
			writeErrorMsg(w, http.StatusBadRequest, exitcode.InvalidAction, err.Error())
			return
		}
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
	ctx, cancel := context.WithCancel(r.Context()) // ends the log followers with the stream
	defer cancel()
	startSSE(w)
	c := h.hub.subscribe()
	defer h.hub.unsubscribe(c)
	var logLines <-chan logChunk
	if logs != nil {
		logLines = logs.start(ctx)
	}
	flusher.Flush()
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		select {
		case ev := <-c.ch:
			if writeEvent(w, ev) != nil {
				return
			}
			// Send what is queued before flushing: one write for a burst.
			for n := len(c.ch); n > 0; n-- {
				if writeEvent(w, <-c.ch) != nil {
					return
				}
			}
			flusher.Flush()
		case chunk := <-logLines:
			if writeEvent(w, logs.event(chunk)) != nil {
				return
			}
			flusher.Flush()
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-c.dropped:
			return
		case <-ctx.Done():
			return
		case <-h.done(): // Close ends every stream
			return
		}
	}
}

// logFollow follows a program's stdout and stderr for an events stream
// (?program=NAME): each "log" event carries {"stream": "stdout", "lines":
// [...]}, and as its id the offsets after the lines followed so far,
// "STDOUT,STDERR", which a reconnecting browser sends back
// (Last-Event-ID) to go on where it was.
type logFollow struct {
	paths   [2]string // stdout, stderr ("" when stderr goes to the stdout file)
	offsets [2]int64
}

// logChunk is lines appended to one of the files.
type logChunk struct {
	stream int // 0 stdout, 1 stderr
	lines  []string
	next   int64
}

var streamNames = [2]string{streamStdout, streamStderr}

// newLogFollow reads where to start: Last-Event-ID, else ?stdout=N and
// ?stderr=N (the offsets of tails just read), else the files' ends.
func newLogFollow(pc *usrsvc.Program, r *http.Request) (*logFollow, error) {
	lf := &logFollow{paths: [2]string{pc.Stdout, pc.Stderr}, offsets: [2]int64{-1, -1}}
	if pc.Stderr == pc.Stdout {
		lf.paths[1] = ""
	}
	q := r.URL.Query()
	from := [2]string{q.Get(streamStdout), q.Get(streamStderr)}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		a, b, _ := strings.Cut(id, ",")
		from = [2]string{a, b}
	}
	for i, s := range from {
		off, _, err := parseOffset(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", streamNames[i], err)
		}
		lf.offsets[i] = off
	}
	for i, p := range lf.paths {
		if p != "" && lf.offsets[i] < 0 {
			_, lf.offsets[i], _ = tailFile(p, 0)
		}
	}
	return lf, nil
}

// start follows both files until ctx ends; their lines come on the channel.
func (lf *logFollow) start(ctx context.Context) <-chan logChunk {
	ch := make(chan logChunk)
	for i, p := range lf.paths {
		if p == "" {
			continue
		}
		go followFile(ctx, p, lf.offsets[i], func(lines []string, next int64) error {
			select {
			case ch <- logChunk{stream: i, lines: lines, next: next}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}
	return ch
}

// event is chunk's "log" event, its id the offsets so far.
func (lf *logFollow) event(c logChunk) sseEvent {
	lf.offsets[c.stream] = c.next
	return sseEvent{name: "log", id: offsetID(lf.offsets[0]) + "," + offsetID(lf.offsets[1]),
		data: mustJSON(map[string]any{"stream": streamNames[c.stream], "lines": c.lines})}
}

// startSSE sets the headers of a server-sent events response.
func startSSE(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// Reconnect after 2 s when the stream breaks (the default is 3).
	fmt.Fprint(w, "retry: 2000\n\n")
}

// writeEvent writes one event; its JSON data is one line.
func writeEvent(w http.ResponseWriter, ev sseEvent) error {
	if ev.id != "" {
		if _, err := fmt.Fprintf(w, "id: %s\n", ev.id); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data)
	return err
}
