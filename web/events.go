package web

// eventRoutes registers /events, the server-sent events stream the page
// follows for live updates.
//
// Not built yet. It must poll nothing while no client is connected, bound
// the number of clients, and return when h.done() is closed (Close), so
// that a graceful shutdown does not wait for browsers.
func (h *Handler) eventRoutes() {}
