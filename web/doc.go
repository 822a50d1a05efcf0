// Package web is usrsvcweb's HTTP interface over the usrsvc library: the
// supervisord-compatible XML-RPC at /RPC2 (so supervisorctl and other
// supervisord clients work unchanged), the streamed log tails at
// /logtail/NAME[/stderr], and the page, JSON API, server-sent events and
// Prometheus metrics.
//
// [New] returns one http.Handler; cmd/usrsvcweb only builds the listener
// around it, and an embedder can mount it in a server of its own:
//
//	cfg, err := usrsvc.LoadConfig("")
//	...
//	h, err := web.New(web.Options{Config: cfg, Username: "admin", Password: pw})
//	...
//	srv := web.NewServer(h) // header and body read timeouts, bounded headers
//	srv.Serve(listener)
//
// The handler acts through the library, with the same per-program locks as
// usrsvc and usrsvcd: a stop through it is a manual stop, which usrsvcd
// respects until a manual start. It needs no usrsvcd, and never blocks one.
//
// # Security
//
// Every request's Host must name this server (localhost, 127.0.0.1, [::1],
// Options.AllowedHosts, or the unix socket): others get 421 before
// anything else, which defeats DNS rebinding. Then it is authenticated
// when credentials are configured (HTTP Basic; 401 for every route
// otherwise, which closes the connection; comparisons in constant time;
// failed logins slowed per peer, at most two password checks at once,
// logged once a minute per peer). Every response carries a
// Content-Security-Policy of "default-src 'self'; frame-ancestors
// 'none'". Request bodies are bounded (1 MiB), XML-RPC answers too (64
// calls in a multicall, 8 MiB), and so are the requests reading logs (4
// at once) and the streams (MaxStreams, MaxStreamsPerPeer).
// State-changing routes are POST only, refused cross-origin
// ([net/http.CrossOriginProtection]) and refused when read-only; GET never
// changes anything; every change is logged with its user and peer. Log
// files are found by program name in the configuration, never by a path
// from the request, opened without following a symbolic link and read
// from their end, bounded. The program that is this server itself is
// never stopped through it (self.go). [NewServer] and [LimitListener]
// bound what a client holds before it sends anything.
//
// # Adding routes
//
// Each concern has one file and one method registering its routes, called
// by routes() in web.go:
//
//	rpc.go      rpcRoutes      /RPC2, /logtail/NAME[/stderr], /mainlogtail
//	page.go     pageRoutes     /, /program/NAME and their forms
//	api.go      apiRoutes      /api/v1/...
//	events.go   eventRoutes    /events (server-sent events)
//	metrics.go  metricsRoutes  /metrics
//
// Register a route with one of:
//
//	h.handle("GET /api/v1/programs", f)                  // reads only
//	h.handleAction("POST /api/v1/programs/{name}/stop", f) // changes state
//
// handleAction wraps f so that it is POST-only (by its pattern), refused
// for cross-origin browser requests and answered 403 when read-only; never
// change anything from a route registered with handle. Authentication,
// security headers and the body bound apply to every route already.
//
// What a route needs is on the Handler: h.manager() (the usrsvc.Manager:
// Start, Stop, Restart, Signal, Status, StatusAll), h.config() (the
// configuration in force, replaced by a reread), h.reread(ctx), h.now()
// (the injected clock) and h.log. A streaming response (server-sent
// events, tail -f) returns when h.done() is closed (by Close); the log
// streams of /logtail take a slot with h.acquireStream() (at most
// MaxStreams at once) and run under h.streamContext(r), which ends when the
// client goes or Close is called. processInfo and processState (supervisor.go)
// map a program's status to supervisord's states; the page can show the
// same. groups.go names programs as supervisorctl sees them (GROUP:NAME)
// and reads its namespecs; update.go keeps what supervisorctl reread and
// update need between calls.
package web
