package web

// metricsRoutes registers /metrics, the Prometheus metrics of every
// program and of usrsvcd.
//
// Not built yet: github.com/prometheus/client_golang with a collector that
// reads the programs' status on each scrape (nothing in between).
func (h *Handler) metricsRoutes() {}
