package web

import (
	"fmt"
	"net/http"
	"time"
)

// eventRoutes registers the server-sent events stream the page follows
// for live updates, at /api/v1/events (and /events, its short name).
//
// Each client first gets a "snapshot" event (the whole state, as GET
// /api/v1/programs), then a "program" event with a program's new state
// whenever it changes, a "daemon" event when usrsvcd's does, and a
// "removed" event when a reread removed a program. One watcher serves
// every client and runs only while one is connected (see watch.go); the
// number of streams is bounded (maxStreams, 503 beyond), and every
// stream ends when the handler is closed.
func (h *Handler) eventRoutes() {
	h.handle("GET /api/v1/events", h.serveEvents)
	h.handle("GET /events", h.serveEvents)
}

// keepAlive is how often an idle stream sends a comment, so proxies and
// browsers keep the connection.
const keepAlive = 25 * time.Second

func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	release, err := h.hub.acquire()
	if err != nil {
		w.Header().Set("Retry-After", "10")
		http.Error(w, fmt.Sprintf("too many live streams (at most %d): close other pages of this server", maxStreams), http.StatusServiceUnavailable)
		return
	}
	defer release()
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported by this connection", http.StatusInternalServerError)
		return
	}
	startSSE(w)
	c := h.hub.subscribe()
	defer h.hub.unsubscribe(c)
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
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-c.dropped:
			return
		case <-r.Context().Done():
			return
		case <-h.done():
			return
		}
	}
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
