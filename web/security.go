package web

import (
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/usrsvc/usrsvc/internal/exitcode"
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
// times and header size, which records each connection's peer
// ([ConnContext]). It sets no WriteTimeout: tail -f and server-sent
// events stream for as long as the client stays. A connection that sends
// no complete request header within ReadHeaderTimeout is closed, and so
// is every connection answered 401.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnContext:       ConnContext,
	}
}

// loopbackHosts are the names a request may always give in its Host
// header (with any port).
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// checkHost refuses, with 421 Misdirected Request, a request whose Host
// header names another server than this one: a browser led to this
// server by DNS rebinding (evil.example resolving to 127.0.0.1) sends
// Host: evil.example, and to the browser the attacker's page and this
// server are then the same origin, so that CrossOriginProtection alone
// would let its requests through. It runs before authentication, so a
// browser never offers the rebound page the saved credentials.
//
// Allowed: localhost, 127.0.0.1 and [::1] with any port, the names of
// Options.AllowedHosts, and on a unix socket no Host at all, or the
// socket's own path or file name (with or without .sock).
func (h *Handler) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.hostAllowed(r) {
			next.ServeHTTP(w, r)
			return
		}
		p := peerOf(r)
		h.refusals.warn("request refused: its Host is not this server's (DNS rebinding?)", p.Key,
			"host", trunc(r.Host), "peer", p.Name, "path", trunc(r.URL.Path))
		msg := "421 Misdirected Request: usrsvcweb answers only requests for localhost, 127.0.0.1, [::1]" +
			" or the names in [Web] allowed_hosts, not " + trunc(r.Host)
		w.Header().Set("Connection", "close")
		if isAPI(r) {
			writeErrorMsg(w, http.StatusMisdirectedRequest, exitcode.InvalidAction, msg)
			return
		}
		http.Error(w, msg, http.StatusMisdirectedRequest)
	})
}

func (h *Handler) hostAllowed(r *http.Request) bool {
	host := strings.ToLower(r.Host)
	if host == "" {
		return true // HTTP/1.0, or supervisorctl's tail -f over the unix socket
	}
	if hn, _, err := net.SplitHostPort(host); err == nil {
		host = hn
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if slices.Contains(loopbackHosts, host) || slices.Contains(h.allowedHosts, host) {
		return true
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr); ok && a.Name != "" {
		base := strings.ToLower(filepath.Base(a.Name))
		return host == strings.ToLower(a.Name) || host == base || host == strings.TrimSuffix(base, ".sock")
	}
	return false
}
