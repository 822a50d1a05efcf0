package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/exitcode"
)

// Options configures a [Handler].
type Options struct {
	// Config is the configuration served; required. A reread
	// (supervisorctl reread, the page's reread) loads Config.Path again.
	Config *usrsvc.Config
	// Manager acts on the programs. nil: a Manager of its own over Config,
	// without a supervising loop (like the usrsvc command). An embedder
	// running Manager.Run passes its Manager, so a reread applies to it.
	Manager *usrsvc.Manager
	// ReadOnly refuses every state-changing request: 403 for the page and
	// the JSON API, a fault for XML-RPC methods.
	ReadOnly bool
	// Username and Password are the HTTP Basic credentials every request
	// must carry. Password is plain text, "{SHA}" + the hex SHA-1 of the
	// password, or a bcrypt hash. Both empty: no authentication (only for a
	// unix socket in the 0700 state directory; usrsvcweb refuses TCP
	// without a password).
	Username, Password string
	// Logger receives failed logins (with the peer's address), operations
	// and errors. nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxBody bounds request bodies; 0 means 1 MiB.
	MaxBody int64
	// RestartSelf, when set, ends the server so that its supervisor
	// (usrsvcd) starts it again: a restart asked of the program that is
	// this server itself answers first, then calls it (see self.go).
	// cmd/usrsvcweb sets it; nil refuses such a restart.
	RestartSelf func()
	// AllowedHosts are host names requests may give in their Host header,
	// besides localhost, 127.0.0.1 and [::1]: others are refused with 421
	// (DNS rebinding). The names a remote browser uses to reach this
	// server go here.
	AllowedHosts []string
}

// DefaultMaxBody is the default bound on a request body.
const DefaultMaxBody = 1 << 20

// Handler serves usrsvcweb's routes. Create it with [New]; Close it when
// the server shuts down, so streaming responses end.
type Handler struct {
	opts Options
	log  *slog.Logger
	auth *authenticator
	// mgr is the Manager in use; a reread stores its new configuration in
	// it (Manager.Reload).
	mgr *usrsvc.Manager
	// reloadMu serialises rereads.
	reloadMu sync.Mutex
	// lastReload is the outcome of the last reread asked through this
	// handler (nil: none yet).
	lastReload atomic.Pointer[reloadOutcome]

	// methods is the XML-RPC method table (rpc.go).
	methods map[string]rpcMethod
	// streams is the one pool of streaming responses (streams.go).
	streams *streamPool
	// logSlots bounds the requests reading logs at once (maxLogRequests).
	logSlots chan struct{}

	mux     *http.ServeMux
	root    http.Handler
	cop     *http.CrossOriginProtection
	started time.Time
	// allowedHosts are Options.AllowedHosts, lower case.
	allowedHosts []string
	// refusals logs refused requests at most once a minute per peer.
	refusals *rateLog
	// upd is what supervisorctl reread and update need remembered: the
	// groups added, and what an update stopped (update.go).
	updMu sync.Mutex
	upd   updateState

	// reader reads the programs' status for the page, the API, the live
	// updates and the metrics; hub is the one watcher behind the live
	// updates.
	reader  *reader
	hub     *hub
	flashes flashes // the outcomes of the page's forms

	// ctx ends streaming responses (tail -f, server-sent events) on Close.
	ctx    context.Context
	cancel context.CancelFunc
}

// reloadOutcome is what a reread through usrsvcweb found.
type reloadOutcome struct {
	Time    time.Time
	OK      bool
	Message string
	Added   []string
	Changed []string
	Removed []string
}

// New returns the handler of every usrsvcweb route for opts. It does no
// I/O.
func New(opts Options) (*Handler, error) {
	if opts.Config == nil {
		return nil, errors.New("web: Options.Config is nil")
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	h := &Handler{opts: opts, log: opts.Logger, mux: http.NewServeMux(), cop: http.NewCrossOriginProtection(),
		streams: newStreamPool(MaxStreams, MaxStreamsPerPeer), logSlots: make(chan struct{}, maxLogRequests)}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h.mgr = opts.Manager
	if h.mgr == nil {
		m, err := usrsvc.NewManager(opts.Config, usrsvc.Options{Logger: h.log})
		if err != nil {
			return nil, err
		}
		h.mgr = m
	}
	auth, err := newAuthenticator(opts.Username, opts.Password, h.log)
	if err != nil {
		return nil, err
	}
	h.auth = auth
	for _, a := range opts.AllowedHosts {
		h.allowedHosts = append(h.allowedHosts, strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")))
	}
	h.refusals = newRateLog(h.log, time.Minute)
	h.upd.initGroups(h.config())
	h.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := peerOf(r)
		h.refusals.warn("cross-origin request refused", p.Key, "method", r.Method, "path", trunc(r.URL.Path),
			"origin", trunc(r.Header.Get("Origin")), "peer", p.Name)
		const msg = "cross-origin request refused: state-changing requests must come from this server's own pages"
		if isAPI(r) {
			writeErrorMsg(w, http.StatusForbidden, exitcode.InvalidAction, msg)
			return
		}
		http.Error(w, msg, http.StatusForbidden)
	}))
	h.started = h.now()
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.reader, h.hub = newReader(h), newHub(h)
	h.routes()
	h.root = h.secure(h.checkHost(h.auth.wrap(withRequester(h.mux))))
	return h, nil
}

// routes registers every concern's routes. Each concern has its own file
// and one registering method.
func (h *Handler) routes() {
	h.rpcRoutes()     // rpc.go: /RPC2, /logtail/NAME[/stderr], /mainlogtail
	h.pageRoutes()    // page.go: /, /program/NAME, the page's forms
	h.apiRoutes()     // api.go: /api/v1/...
	h.eventRoutes()   // events.go: /events (server-sent events)
	h.metricsRoutes() // metrics.go: /metrics
}

// ServeHTTP serves one request: security headers, body bound,
// authentication, then the route.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.root.ServeHTTP(w, r) }

// Close ends the streaming responses in progress (tail -f, server-sent
// events), so that http.Server.Shutdown returns promptly. The Handler
// still answers other requests.
func (h *Handler) Close() error {
	h.cancel()
	return nil
}

// done is closed when Close was called: streaming handlers return when it
// is.
func (h *Handler) done() <-chan struct{} { return h.ctx.Done() }

// streamContext returns the context of a streaming response: done when
// the client goes away or when Close is called. Call cancel when the
// stream ends.
func (h *Handler) streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(h.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// handle registers a route that changes nothing (GET, HEAD). pattern is an
// http.ServeMux pattern with its method, e.g. "GET /api/v1/programs".
func (h *Handler) handle(pattern string, f http.HandlerFunc) {
	h.mux.Handle(pattern, f)
}

// handleAction registers a state-changing route (POST): it is refused
// with 403 when read-only, and for cross-origin browser requests
// (http.CrossOriginProtection).
func (h *Handler) handleAction(pattern string, f http.HandlerFunc) {
	h.mux.Handle(pattern, h.cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.opts.ReadOnly {
			const msg = "read-only: usrsvcweb runs with read_only = true in [Web]; changes go through usrsvc on the host"
			if isAPI(r) {
				writeErrorMsg(w, http.StatusForbidden, exitcode.InvalidAction, msg)
				return
			}
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		f(w, r)
	})))
}

// handlePost registers a POST route that decides itself what it changes
// (/RPC2 answers a fault for each state-changing method when read-only);
// cross-origin browser requests are refused.
func (h *Handler) handlePost(pattern string, f http.HandlerFunc) {
	h.mux.Handle(pattern, h.cop.Handler(f))
}

// Manager returns the Manager the handler acts through.
func (h *Handler) manager() *usrsvc.Manager { return h.mgr }

// config returns the configuration in force (the last successful reread).
func (h *Handler) config() *usrsvc.Config { return h.mgr.Config() }

func (h *Handler) now() time.Time {
	if h.opts.Now != nil {
		return h.opts.Now()
	}
	return time.Now()
}

// reread loads the configuration again from its main file and puts it in
// force here, then asks a running usrsvcd to reread too. It never restarts
// or stops anything.
func (h *Handler) reread(ctx context.Context) (*reloadOutcome, error) {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	old := h.config()
	cfg, err := usrsvc.LoadConfig(old.Path)
	out := &reloadOutcome{Time: h.now()}
	if err != nil {
		out.Message = err.Error()
		h.lastReload.Store(out)
		return out, err
	}
	out.Added, out.Changed, out.Removed = diffConfigs(old, cfg)
	if err := h.mgr.Reload(ctx, cfg); err != nil {
		out.Message = err.Error()
		h.lastReload.Store(out)
		return out, err
	}
	out.OK = true
	out.Message = fmt.Sprintf("%d programs (%d added, %d removed, %d changed)", len(cfg.Programs), len(out.Added), len(out.Removed), len(out.Changed))
	if msg, err := signalDaemonReread(ctx, cfg); err != nil {
		out.Message += "; " + err.Error()
	} else if msg != "" {
		out.Message += "; " + msg
	}
	h.lastReload.Store(out)
	return out, nil
}

// isAPI reports whether r is a request of the JSON API, whose answers,
// errors included, are JSON.
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }
