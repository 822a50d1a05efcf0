package web

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"

	"github.com/usrsvc/usrsvc"
)

// The page for people: / lists every program and usrsvcd's status,
// /program/NAME shows one program with its configuration and its log
// tails. Both are rendered on the server (html/template) and work with
// JavaScript off: the buttons are plain forms that POST, then redirect
// (POST/redirect/GET) to the page with the outcome. With JavaScript on,
// /static/app.js sends the same actions to the JSON API, follows the live
// updates (/api/v1/events) and the log tails, without reloading.
//
// The Content-Security-Policy ("default-src 'self'") allows no inline
// script or style: everything is in /static, embedded in the binary.

//go:embed assets
var assets embed.FS

var pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"duration": formatDuration,
	"bytes": func(b int64) string {
		if b <= 0 {
			return "–"
		}
		return formatBytes(b)
	},
	"cpu": func(p *float64) string {
		if p == nil {
			return "–"
		}
		return formatPercent(*p)
	},
	"rowOf": func(p *programView, readOnly bool) rowData {
		if p == nil {
			p = &programView{}
		}
		return rowData{P: p, ReadOnly: readOnly}
	},
	// clock shows an RFC 3339 time as the time of day.
	"clock": func(s string) string {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return s
		}
		return t.Local().Format("15:04:05")
	},
	"actionsOf": func(name string, back, self bool, reload string) actionsData {
		return actionsData{Name: name, Back: back, Self: self, Reload: reload}
	},
}).ParseFS(assets, "assets/*.html"))

type rowData struct {
	P        *programView
	ReadOnly bool
}

// actionsData is a program's buttons: one form, one button per action;
// Back returns to the program's page instead of the list.
type actionsData struct {
	Name string
	Back bool
	// Self: the program is this server; it offers no Stop (see self.go).
	Self bool
	// Reload is the program's reload_signal: it offers Reload ("": none).
	Reload string
}

// pageData is what the templates of both pages get.
type pageData struct {
	Title string
	Host  string
	// User is the account whose programs these are.
	User     string
	Overview *overview
	Flash    *flash
	// The program page:
	P      *programView
	Config configEntries
	Logs   []logSection
	// Events is the live stream the page follows: the program's changes
	// and the lines appended to its logs after the tails shown.
	Events string
}

// logSection is one log tail of the program page.
type logSection struct {
	*logTail
	Error string
}

func (h *Handler) pageRoutes() {
	h.handle("GET /{$}", h.pageIndex)
	h.handle("GET /program/{name}", h.pageProgram)
	h.handleAction("POST /program/{name}", h.pageAction)
	h.handleAction("POST /reread", h.pageReread)
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	h.handle("GET /static/{file}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("file") {
		case "app.js", "style.css", "favicon.svg":
			http.StripPrefix("/static", files).ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
	h.handle("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
}

func (h *Handler) pageIndex(w http.ResponseWriter, r *http.Request) {
	o := h.reader.read(r.Context(), pageMaxAge)
	h.render(w, "index.html", &pageData{Title: "usrsvc of " + account() + " on " + hostname(), Host: hostname(), User: account(),
		Overview: o, Flash: h.flashes.take(r)})
}

func (h *Handler) pageProgram(w http.ResponseWriter, r *http.Request) {
	pc := h.config().Program(r.PathValue("name"))
	if pc == nil {
		_, err := h.manager().Do(r.Context(), usrsvc.ActionStatus, r.PathValue("name"))
		msg := "no such program"
		if err != nil {
			msg = err.Error()
		}
		http.Error(w, msg, http.StatusNotFound)
		return
	}
	d, _ := h.detail(r.Context(), pc)
	data := &pageData{Title: pc.Name + " · usrsvc of " + account() + " on " + hostname(), Host: hostname(), User: account(),
		Overview: h.reader.read(r.Context(), pageMaxAge), Flash: h.flashes.take(r),
		P: d.programView, Config: d.Config}
	for _, s := range []string{streamStdout, streamStderr} {
		t, err := h.tail(r.Context(), pc, s, defaultTailLines)
		sec := logSection{logTail: t}
		if err != nil {
			sec.logTail = &logTail{Program: pc.Name, Stream: s}
			sec.Error = err.Error()
		}
		data.Logs = append(data.Logs, sec)
	}
	q := url.Values{"program": {pc.Name}}
	for _, sec := range data.Logs {
		if sec.Error == "" && !sec.SameAsStdout {
			q.Set(sec.Stream, strconv.FormatInt(sec.Offset, 10))
		}
	}
	data.Events = "/api/v1/events?" + q.Encode()
	h.render(w, "program.html", data)
}

// pageAction is a button's form (its "action" value: start, stop,
// restart or reload): it runs the action, then redirects back to the page it came
// from, which shows the outcome.
func (h *Handler) pageAction(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	res, _ := h.act(r.Context(), name, r.PostFormValue("action"), false)
	text := res.Message
	if res.OK {
		text = name + ": " + res.Message
	}
	back := "/"
	if r.PostFormValue("back") == "program" && h.config().Program(name) != nil {
		back = "/program/" + name
	}
	h.redirect(w, r, back, &flash{OK: res.OK, Text: text})
}

func (h *Handler) pageReread(w http.ResponseWriter, r *http.Request) {
	out, err := h.reread(r.Context())
	h.reader.changed()
	h.hub.trigger()
	if err == nil {
		h.audit(r.Context(), "reread", "", "message", out.Message)
	}
	f := &flash{OK: err == nil}
	switch {
	case err != nil:
		f.Text = "reread failed, the configuration in force is unchanged: " + err.Error()
	case out != nil:
		f.Text = "reread: " + out.Message
	}
	h.redirect(w, r, "/", f)
}

// redirect answers a form with 303 See Other to back, the outcome kept
// for the next GET of it.
func (h *Handler) redirect(w http.ResponseWriter, r *http.Request, back string, f *flash) {
	http.Redirect(w, r, back+"?flash="+h.flashes.put(f), http.StatusSeeOther)
}

func (h *Handler) render(w http.ResponseWriter, name string, data *pageData) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("web: rendering "+name, "error", err)
		http.Error(w, "the page could not be rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// flash is the outcome of a form, shown once by the page it redirects to.
type flash struct {
	OK   bool
	Text string
	at   time.Time
}

// flashes keeps the outcomes of forms until their page is shown: bounded
// in number and age, so that an abandoned redirect costs nothing.
type flashes struct {
	mu sync.Mutex
	m  map[string]*flash
}

const (
	maxFlashes = 128
	flashTTL   = time.Minute
)

func (fl *flashes) put(f *flash) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	f.at = time.Now()
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.m == nil {
		fl.m = map[string]*flash{}
	}
	for k, v := range fl.m {
		if len(fl.m) >= maxFlashes || time.Since(v.at) > flashTTL {
			delete(fl.m, k)
		}
	}
	fl.m[id] = f
	return id
}

// take returns the flash named by the request's ?flash=, once.
func (fl *flashes) take(r *http.Request) *flash {
	id := r.URL.Query().Get("flash")
	if id == "" {
		return nil
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	f := fl.m[id]
	delete(fl.m, id)
	if f != nil && time.Since(f.at) > flashTTL {
		return nil
	}
	return f
}

var hostOnce = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
})

func hostname() string { return hostOnce() }

var accountOnce = sync.OnceValue(func() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Getuid())
})

// account names the account whose programs the page shows.
func account() string { return accountOnce() }
