package web

import (
	"fmt"
	"net/http"
)

// pageRoutes registers the pages for people: / (every program),
// /program/NAME (one program, its config and live log tails) and the forms
// of their start/stop/restart buttons.
//
// Not built yet: / answers a plain-text pointer to what works. The page
// (html/template + a small embedded script, working with JavaScript off:
// forms POST then redirect) replaces it, registering its forms with
// h.handleAction so they are POST-only, refused cross-origin and refused
// when read-only.
func (h *Handler) pageRoutes() {
	h.handle("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "usrsvcweb %s: %d programs configured in %s.\n"+
			"supervisorctl speaks to this server at /RPC2 (supervisorctl -s unix:///PATH/usrsvcweb.sock status).\n",
			version(), len(h.config().Programs), h.config().Path)
	})
}
