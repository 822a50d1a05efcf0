package web

import (
	"net/http"
	"time"
)

// ContentSecurityPolicy is sent with every response: the page loads only
// its own script and style, and no other site may frame it.
const ContentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'"

// secure sets the security headers of every response and bounds the
// request body.
func (h *Handler) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// Server timeouts set by [NewServer].
const (
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request (headers and a body of at
	// most 1 MiB).
	ReadTimeout = 30 * time.Second
	IdleTimeout = 2 * time.Minute
	// MaxHeaderBytes bounds the request headers.
	MaxHeaderBytes = 64 << 10
)

// NewServer returns an http.Server for h with bounded header and body read
// times and header size. It sets no WriteTimeout: tail -f and server-sent
// events stream for as long as the client stays.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}
