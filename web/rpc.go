package web

import (
	"net/http"
)

// rpcRoutes registers supervisord's interfaces, which supervisorctl and
// other supervisord clients use unchanged: XML-RPC at /RPC2 and the
// streamed log tails of supervisorctl tail -f and maintail -f.
func (h *Handler) rpcRoutes() {
	h.handlePost("POST /RPC2", h.serveRPC)
	h.handle("GET /logtail/{name}", h.serveLogtail)
	h.handle("GET /logtail/{name}/{channel}", h.serveLogtail)
	h.handle("GET /mainlogtail", h.serveLogtail)
}

func (h *Handler) serveRPC(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "XML-RPC is not built yet", http.StatusNotImplemented)
}

func (h *Handler) serveLogtail(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "log tails are not built yet", http.StatusNotImplemented)
}
