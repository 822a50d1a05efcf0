package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestPageLists(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha", "beta"}, Options{},
		"  [[Monitor]]", "  rss_limit = 50000")
	pid := e.start("alpha")
	w := do(e.h, "GET", "/", nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	assert.Equal(t, ContentSecurityPolicy, w.Header().Get("Content-Security-Policy"))
	page := w.Body.String()
	assert.Contains(t, page, `<tr id="p-alpha" data-name="alpha" class="state-running">`)
	assert.Contains(t, page, `<tr id="p-beta" data-name="beta" class="state-stopped">`)
	assert.Contains(t, page, `data-f="pid">`+itoa(pid)+`<`)
	assert.Contains(t, page, "rss_limit 48.8 MiB private")
	assert.Contains(t, page, `<form method="post" action="/program/alpha" class="act actions" data-api="/api/v1/programs/alpha/">`)
	assert.Contains(t, page, `<button name="action" value="stop" class="btn-stop">Stop</button>`)
	assert.Contains(t, page, `action="/reread"`)
	// The CSP allows no inline script or style.
	assert.NotRegexp(t, regexp.MustCompile(`<script>|<script [^>]*>[^<]|<style|style="|\son[a-z]+="`), page)
	assert.Contains(t, page, `<script src="/static/app.js" defer></script>`)

	for _, f := range []string{"/static/app.js", "/static/style.css", "/static/favicon.svg"} {
		assert.Equal(t, http.StatusOK, do(e.h, "GET", f, nil).Code, f)
	}
	assert.Equal(t, http.StatusNotFound, do(e.h, "GET", "/static/layout.html", nil).Code, "templates are not served")
}

func TestPageReadOnlyHasNoButtons(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{ReadOnly: true})
	for _, path := range []string{"/", "/program/alpha"} {
		page := do(e.h, "GET", path, nil).Body.String()
		assert.NotContains(t, page, "<form", path)
		assert.NotContains(t, page, "<button", path)
		assert.Contains(t, page, "read-only", path)
	}
}

// With JavaScript off: the form POSTs, the server acts and redirects
// (303), and the page it redirects to shows the outcome once.
func TestPageFormsWithoutJavaScript(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	form := strings.NewReader(url.Values{"back": {"program"}, "action": {"start"}}.Encode())
	w := do(e.h, "POST", "/program/alpha", form, "Content-Type", "application/x-www-form-urlencoded",
		"Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusSeeOther, w.Code)
	loc := w.Header().Get("Location")
	assert.True(t, strings.HasPrefix(loc, "/program/alpha?flash="), loc)
	page := do(e.h, "GET", loc, nil).Body.String()
	assert.Contains(t, page, `class="flash ok"`)
	assert.Contains(t, page, "alpha: started")
	assert.Contains(t, page, `class="detail state-running"`)
	again := do(e.h, "GET", loc, nil).Body.String()
	assert.NotContains(t, again, "alpha: started", "a flash shows once")

	w = do(e.h, "POST", "/program/alpha", strings.NewReader("action=stop&back=https://evil.example/"),
		"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusSeeOther, w.Code)
	loc = w.Header().Get("Location")
	assert.True(t, strings.HasPrefix(loc, "/?flash="), "only this server's pages are redirect targets: %s", loc)
	page = do(e.h, "GET", loc, nil).Body.String()
	assert.Contains(t, page, `class="flash ok" role="status">alpha: `)
	assert.Contains(t, page, `class="state-stopped-by-hand"`)

	// A failure is shown as one.
	require.NoError(t, os.WriteFile(e.cfg.Path, []byte("[Main]\n"), 0o600))
	w = do(e.h, "POST", "/reread", nil, "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusSeeOther, w.Code)
	page = do(e.h, "GET", w.Header().Get("Location"), nil).Body.String()
	assert.Contains(t, page, `class="flash bad"`)
	assert.Contains(t, page, "reread failed")
}

func TestProgramPage(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{}, "  [[Env]]", "  API_TOKEN = hunter2")
	require.NoError(t, os.WriteFile(e.path("alpha.log"), []byte("hello <b>world</b>\n"), 0o600))
	w := do(e.h, "GET", "/program/alpha", nil)
	require.Equal(t, http.StatusOK, w.Code)
	page := w.Body.String()
	assert.Contains(t, page, "hello &lt;b&gt;world&lt;/b&gt;", "log lines are escaped")
	assert.Regexp(t, regexp.MustCompile(`data-events="/api/v1/events\?program=alpha&amp;stderr=0&amp;stdout=19"`), page,
		"the page follows its program and its logs after the tail shown, on one stream")
	assert.Contains(t, page, e.path("alpha.pid"))
	assert.Contains(t, page, "API_TOKEN (values not shown)")
	assert.NotContains(t, page, "hunter2", "[[Env]] values are not shown")
	assert.Equal(t, http.StatusNotFound, do(e.h, "GET", "/program/nope", nil).Code)
}

// The page names the account, warns when usrsvcd is down, and says when
// usrsvcd tries again a program in backoff.
func TestPageAccountBannerNextTry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := "[Main]\npidfile = " + dir + "/usrsvcd.pid\nstate_dir = " + dir + "/state\n" +
		"[Program:crash]\ncommand = /bin/false\npidfile = " + dir + "/crash.pid\nstdout = " + dir + "/crash.log\n" +
		"success_seconds = 0.2\nrestart_delay = 600\n"
	require.NoError(t, os.WriteFile(dir+"/usrsvc.cfg", []byte(src), 0o600))
	cfg, err := usrsvc.LoadConfig(dir + "/usrsvc.cfg")
	require.NoError(t, err)
	h, _ := newTestHandler(t, Options{Config: cfg})
	body := do(h, "GET", "/", nil).Body.String()
	assert.Contains(t, body, `<span class="user">`+account()+`</span>@`)
	assert.Regexp(t, `<p id="daemon-down" class="banner" role="alert">usrsvcd is not running`, body)

	m, err := usrsvc.NewManager(cfg, usrsvc.Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var p programView
	testproc.WaitFor(t, 30*time.Second, func() bool {
		p = programView{}
		w := do(h, "GET", "/api/v1/programs/crash", nil)
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		return p.State == stateBackoff && p.NextTry != ""
	}, "crash in backoff, with its next try")
	next, err := time.Parse(time.RFC3339, p.NextTry)
	require.NoError(t, err)
	assert.True(t, next.After(time.Now()), "the next try is ahead")
	body = do(h, "GET", "/program/crash", nil).Body.String()
	assert.Contains(t, body, "next try at "+next.Local().Format("15:04:05"))
}
