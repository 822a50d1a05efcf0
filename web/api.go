package web

// apiRoutes registers the JSON API under /api/v1/ (programs, one program,
// actions, log tails, events), which the page itself uses.
//
// Not built yet. Reads register with h.handle("GET /api/v1/..."), actions
// with h.handleAction("POST /api/v1/programs/{name}/{action}"); both go
// through h.manager() like the XML-RPC methods, and read logs only through
// usrsvc's log reader (program names are looked up, never used as paths).
func (h *Handler) apiRoutes() {}
