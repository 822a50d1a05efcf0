package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/usrsvc/usrsvc/internal/xmlrpc"
)

// rpcRoutes registers supervisord's interfaces, which supervisorctl and
// other supervisord clients use unchanged: XML-RPC at /RPC2 and the
// streamed log tails of supervisorctl tail -f and maintail -f.
func (h *Handler) rpcRoutes() {
	h.methods = h.rpcMethods()
	h.handlePost("POST /RPC2", h.serveRPC)
	h.handle("GET /logtail/{name}", h.serveLogtail)
	h.handle("GET /logtail/{name}/{channel}", h.serveLogtail)
	h.handle("GET /mainlogtail", h.serveMainLogtail)
}

// supervisord's fault codes (supervisor/xmlrpc.py), which its clients
// switch on.
const (
	faultUnknownMethod       = 1
	faultIncorrectParameters = 2
	faultBadArguments        = 3
	faultSignatureUnsupp     = 4
	faultBadName             = 10
	faultBadSignal           = 11
	faultNoFile              = 20
	faultFailed              = 30
	faultAbnormalTermination = 40
	faultSpawnError          = 50
	faultAlreadyStarted      = 60
	faultNotRunning          = 70
	faultSuccess             = 80
	faultAlreadyAdded        = 90
	faultStillRunning        = 91
	faultCantReread          = 92
	// faultParse answers a request that is not XML-RPC (the code the
	// XML-RPC interoperability specification gives to "not well formed").
	faultParse = -32700
)

var faultNames = map[int]string{
	faultUnknownMethod: "UNKNOWN_METHOD", faultIncorrectParameters: "INCORRECT_PARAMETERS",
	faultBadArguments: "BAD_ARGUMENTS", faultSignatureUnsupp: "SIGNATURE_UNSUPPORTED",
	faultBadName: "BAD_NAME", faultBadSignal: "BAD_SIGNAL", faultNoFile: "NO_FILE", faultFailed: "FAILED",
	faultAbnormalTermination: "ABNORMAL_TERMINATION", faultSpawnError: "SPAWN_ERROR",
	faultAlreadyStarted: "ALREADY_STARTED", faultNotRunning: "NOT_RUNNING", faultSuccess: "SUCCESS",
	faultAlreadyAdded: "ALREADY_ADDED", faultStillRunning: "STILL_RUNNING", faultCantReread: "CANT_REREAD", faultParse: "PARSE_ERROR",
}

// fault returns supervisord's fault: its string is "NAME: detail", as
// supervisord words it.
func fault(code int, detail string) *xmlrpc.Fault {
	s := faultNames[code]
	if detail != "" {
		s += ": " + detail
	}
	return &xmlrpc.Fault{Code: code, String: s}
}

// rpcMethod is one XML-RPC method.
type rpcMethod struct {
	// sig is the signature in system.methodSignature's form: the return
	// type, then the parameter types.
	sig  []string
	help string
	// changes: refused when read-only.
	changes bool
	// optional is how many trailing parameters may be left out.
	optional int
	fn       func(ctx context.Context, args []any) (any, error)
}

// Bounds of one XML-RPC request: a system.multicall of log reads would
// otherwise build gigabytes of response in memory (2 000 reads of 1 MiB).
const (
	// MaxMulticallCalls bounds the calls of one system.multicall.
	MaxMulticallCalls = 64
	// MaxRPCResponse bounds the values one XML-RPC response carries: a
	// multicall whose results would be larger answers a fault instead.
	MaxRPCResponse = 8 << 20
	// maxLogRequests bounds the requests that read logs (XML-RPC log
	// reads, multicalls, the page's and the API's tails) served at once;
	// others wait for a slot, or give up when their client leaves.
	maxLogRequests = 4
)

// heavyMethod reports whether an XML-RPC method may answer megabytes
// (log reads, multicall): it runs holding one of the log slots.
func heavyMethod(name string) bool {
	return name == "system.multicall" || strings.Contains(name, "Log") && !strings.HasPrefix(name, "supervisor.clear")
}

// acquireLogSlot waits for one of the maxLogRequests slots of requests
// that read logs; ok is false when ctx ended first.
func (h *Handler) acquireLogSlot(ctx context.Context) (release func(), ok bool) {
	select {
	case h.logSlots <- struct{}{}:
		return func() { <-h.logSlots }, true
	case <-ctx.Done():
		return nil, false
	}
}

// serveRPC answers one XML-RPC call. Every error is a fault in an HTTP
// 200 response, as XML-RPC clients expect. The response is written as it
// is encoded: what it holds is bounded (MaxRPCResponse) and never copied
// into a second buffer.
func (h *Handler) serveRPC(w http.ResponseWriter, r *http.Request) {
	var result any
	call, err := xmlrpc.DecodeCall(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = fault(faultParse, fmt.Sprintf("the request is larger than %d bytes", mbe.Limit))
		} else {
			err = fault(faultParse, err.Error())
		}
		h.log.Warn("refused a malformed XML-RPC request", "peer", peer(r), "err", err)
	} else {
		if heavyMethod(call.Method) {
			release, ok := h.acquireLogSlot(r.Context())
			if !ok {
				return // the client left while waiting
			}
			defer release() // held until the response is written
		}
		// Operations outlive a client that hangs up: a stop half done is
		// worse than one whose answer nobody reads.
		ctx := context.WithoutCancel(r.Context())
		result, err = h.call(ctx, call.Method, call.Params)
		if err == nil && valueSize(result) > MaxRPCResponse {
			result, err = nil, fault(faultFailed, fmt.Sprintf("the response would be larger than %d MiB: "+
				"ask for less in one request (fewer calls in a multicall, shorter log reads)", MaxRPCResponse>>20))
		}
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if err != nil {
		var f *xmlrpc.Fault
		if !errors.As(err, &f) {
			h.log.Error("XML-RPC method failed", "method", call.Method, "err", err)
			f = fault(faultFailed, err.Error())
		}
		xmlrpc.EncodeFault(w, f)
		return
	}
	if err := xmlrpc.EncodeResponse(w, result); err != nil {
		// Only a value of a type the codec does not know (a bug), or the
		// client gone: the response is cut, and the client sees it.
		h.log.Error("cannot encode an XML-RPC response", "method", call.Method, "err", err)
	}
}

// valueSize is about how many bytes the values of v take: the length of
// its strings, 16 for anything else.
func valueSize(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []byte:
		return len(v)
	case []any:
		n := 16
		for _, e := range v {
			n += valueSize(e)
		}
		return n
	case []string:
		n := 16
		for _, e := range v {
			n += len(e) + 16
		}
		return n
	case map[string]any:
		n := 16
		for k, e := range v {
			n += len(k) + valueSize(e)
		}
		return n
	}
	return 16
}

// call runs one method.
func (h *Handler) call(ctx context.Context, name string, args []any) (any, error) {
	m, ok := h.methods[name]
	if !ok {
		return nil, fault(faultUnknownMethod, name)
	}
	if len(args) > len(m.sig)-1 || len(args) < len(m.sig)-1-m.optional {
		return nil, fault(faultIncorrectParameters, fmt.Sprintf("%s takes %s", name, signatureText(m.sig)))
	}
	if m.changes && h.opts.ReadOnly {
		return nil, fault(faultFailed, "read-only: usrsvcweb runs with read_only = true in [Web]; "+
			"change programs with usrsvc on the host")
	}
	return m.fn(ctx, args)
}

func signatureText(sig []string) string {
	if len(sig) == 1 {
		return "no parameters"
	}
	return "(" + strings.Join(sig[1:], ", ") + ")"
}

// rpcMethods is the method table: system.* here, supervisor.* in
// supervisor.go.
func (h *Handler) rpcMethods() map[string]rpcMethod {
	ms := h.supervisorMethods()
	ms["system.listMethods"] = rpcMethod{sig: []string{"array"},
		help: "Return an array listing the available method names.",
		fn: func(context.Context, []any) (any, error) {
			names := make([]string, 0, len(h.methods))
			for n := range h.methods {
				names = append(names, n)
			}
			sort.Strings(names)
			return names, nil
		}}
	ms["system.methodHelp"] = rpcMethod{sig: []string{"string", "string"},
		help: "Return a string showing the method's documentation.",
		fn: func(_ context.Context, a []any) (any, error) {
			m, ok := h.methods[str(a, 0)]
			if !ok {
				return nil, fault(faultSignatureUnsupp, "")
			}
			return m.help, nil
		}}
	ms["system.methodSignature"] = rpcMethod{sig: []string{"array", "string"},
		help: "Return an array describing the method signature in the form [rtype, ptype, ptype...].",
		fn: func(_ context.Context, a []any) (any, error) {
			m, ok := h.methods[str(a, 0)]
			if !ok {
				return nil, fault(faultSignatureUnsupp, "")
			}
			return m.sig, nil
		}}
	ms["system.multicall"] = rpcMethod{sig: []string{"array", "array"},
		help: "Process an array of calls, and return an array of results. Calls are structs " +
			"{'methodName': string, 'params': array}; each result is a single-item array holding the " +
			"value, or a struct {'faultCode': int, 'faultString': string}.",
		fn: h.multicall}
	return ms
}

// multicall runs calls in order, each answering its value in a one-item
// array or its fault as a struct.
func (h *Handler) multicall(ctx context.Context, a []any) (any, error) {
	calls, ok := a[0].([]any)
	if !ok {
		return nil, fault(faultIncorrectParameters, "system.multicall takes an array of {methodName, params} structs")
	}
	if len(calls) > MaxMulticallCalls {
		return nil, fault(faultIncorrectParameters, fmt.Sprintf("system.multicall takes at most %d calls, not %d: split them",
			MaxMulticallCalls, len(calls)))
	}
	out := make([]any, 0, len(calls))
	size := 0
	for _, c := range calls {
		var v any
		var err error
		m, _ := c.(map[string]any)
		name, _ := m["methodName"].(string)
		params, okParams := m["params"].([]any)
		if _, given := m["params"]; !given {
			params, okParams = nil, true
		}
		switch {
		case name == "":
			err = fault(faultIncorrectParameters, "No methodName")
		case name == "system.multicall":
			err = fault(faultIncorrectParameters, "Recursive system.multicall forbidden")
		case !okParams:
			err = fault(faultIncorrectParameters, "params must be an array")
		default:
			v, err = h.call(ctx, name, params)
		}
		if err != nil {
			var f *xmlrpc.Fault
			if !errors.As(err, &f) {
				f = fault(faultFailed, err.Error())
			}
			out = append(out, map[string]any{"faultCode": f.Code, "faultString": f.String})
			continue
		}
		// Stop as soon as the results are too large, before reading more.
		if size += valueSize(v); size > MaxRPCResponse {
			return nil, fault(faultFailed, fmt.Sprintf("the response would be larger than %d MiB: "+
				"ask for less in one request (fewer calls in a multicall, shorter log reads)", MaxRPCResponse>>20))
		}
		out = append(out, []any{v})
	}
	return out, nil
}

// str returns args[i] as a string ("" when it is not one).
func str(args []any, i int) string {
	if i < len(args) {
		s, _ := args[i].(string)
		return s
	}
	return ""
}

// integer returns args[i] as an int64; ok is false when it is not one.
func integer(args []any, i int) (int64, bool) {
	if i < len(args) {
		n, ok := args[i].(int64)
		return n, ok
	}
	return 0, false
}
