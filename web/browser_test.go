package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// The page in a real browser: Debian's headless Chromium, driven with
// chromedp. One browser serves every subtest. Under CI (CI=true) a
// missing chromium fails the test; .ci/run installs it.
//
// Screenshots go to $USRSVC_ARTIFACTS, else to
// $TMPDIR/usrsvc-artifacts: never into the repository.

// chromiumPath finds the browser, or skips (fails under CI).
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing under CI: .ci/run installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the browser tests need it")
	return ""
}

// newBrowser starts one headless Chromium for the test. The flags keep it
// from reaching the network (this machine has none), and a fresh profile
// keeps runs apart.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // kills the browser and waits for it
	})
	// Start the browser now, with a bound (not a timeout on ctx, which
	// would end the browser with it): one that cannot start fails here.
	hung := time.AfterFunc(90*time.Second, cancel)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "starting chromium")
	hung.Stop()
	return ctx
}

// artifactDir is where screenshots go.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("USRSVC_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "usrsvc-artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(artifactDir(t), name)
	require.NoError(t, os.WriteFile(p, png, 0o644))
	t.Logf("screenshot: %s", p)
}

// step runs browser actions with a bound.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(c, actions...), what)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

// waitJS waits until a JavaScript predicate holds in the page.
func waitJS(t *testing.T, ctx context.Context, expr, why string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	_, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err, "waiting for: %s (%s)", why, expr)
}

func cellJS(name, field string) string {
	return fmt.Sprintf(`document.querySelector('#p-%s [data-f="%s"]').textContent`, name, field)
}

func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	// The programs run under a supervising loop (usrsvcd's), so that a
	// killed one is restarted; the server acts through a Manager of its
	// own, as usrsvcweb does.
	e := newUIEnv(t, []string{"alpha", "beta", "gamma"}, Options{},
		"  [[Monitor]]", "  rss_limit = 100000")
	e.runDaemon()
	var o overview
	testproc.WaitFor(t, 30*time.Second, func() bool {
		o = overview{}
		e.getJSON("/api/v1/programs", &o)
		for _, p := range o.Programs {
			if p.State != stateRunning {
				return false
			}
		}
		return len(o.Programs) == 3
	}, "the three programs started by the loop")
	srv := e.server()
	ctx := newBrowser(t)

	t.Run("lists the programs", func(t *testing.T) {
		step(t, ctx, "load the page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#p-gamma")))
		waitJS(t, ctx, `document.getElementById("conn").textContent === "live"`, "the live stream connected")
		for _, p := range o.Programs {
			assert.Equal(t, strconv.Itoa(p.PID), eval[string](t, ctx, cellJS(p.Name, "pid")), p.Name)
			assert.Equal(t, "running", eval[string](t, ctx, cellJS(p.Name, "state")), p.Name)
		}
		assert.Contains(t, eval[string](t, ctx, cellJS("alpha", "monitors")), "rss_limit")
		assert.NotEqual(t, "–", eval[string](t, ctx, cellJS("alpha", "rss")))
		screenshot(t, ctx, "page-list.png")
	})

	// A marker in the page's window survives only if the page is never
	// reloaded.
	eval[bool](t, ctx, `window.notReloaded = true`)

	t.Run("a stop button stops the program and its row updates live", func(t *testing.T) {
		pid := o.Programs[1].PID // beta
		step(t, ctx, "click stop", chromedp.Click(chromedp.CSS(`#p-beta .btn-stop`)))
		waitJS(t, ctx, `document.getElementById("p-beta").classList.contains("state-stopped-by-hand")`, "beta shown stopped by hand")
		waitJS(t, ctx, cellJS("beta", "pid")+` === "–"`, "beta shown without a pid")
		assert.True(t, eval[bool](t, ctx, `window.notReloaded === true`), "the page was not reloaded")
		assert.Contains(t, eval[string](t, ctx, `document.getElementById("flash").textContent`), "beta:")
		testproc.WaitFor(t, 10*time.Second, func() bool { return !testproc.Alive(pid) }, "beta's process gone")
		assert.False(t, eval[bool](t, ctx, `getComputedStyle(document.querySelector("#p-beta .btn-start")).display === "none"`),
			"a stopped program offers Start")
		screenshot(t, ctx, "page-stopped.png")
	})

	t.Run("a program killed with SIGKILL shows its new pid without a reload", func(t *testing.T) {
		old := o.Programs[0].PID // alpha
		require.NoError(t, syscall.Kill(old, syscall.SIGKILL))
		waitJS(t, ctx, fmt.Sprintf(`(function(){ const p = %s; return p !== "–" && p !== "%d"; })()`, cellJS("alpha", "pid"), old),
			"alpha shown with a new pid")
		shown, err := strconv.Atoi(eval[string](t, ctx, cellJS("alpha", "pid")))
		require.NoError(t, err)
		assert.True(t, testproc.Alive(shown), "the pid shown runs")
		var p programView
		e.getJSON("/api/v1/programs/alpha", &p)
		assert.Equal(t, p.PID, shown, "the page shows the process that runs")
		waitJS(t, ctx, cellJS("alpha", "restarts")+` === "1"`, "alpha's restart counted")
		waitJS(t, ctx, cellJS("alpha", "last_exit")+` === "killed by signal 9"`, "alpha's last exit shown")
		assert.True(t, eval[bool](t, ctx, `window.notReloaded === true`), "the page was not reloaded")
		screenshot(t, ctx, "page-restarted.png")
	})

	t.Run("a cross-origin POST is refused", func(t *testing.T) {
		// Another site (localhost instead of 127.0.0.1, another port)
		// with a form aimed at this server: the browser marks the request
		// cross-site and the server refuses it.
		target := srv.URL + "/program/gamma"
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s"><button id="go" name="action" value="stop">go</button></form>`, target)
		}))
		defer evil.Close()
		evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
		step(t, ctx, "the other site's page", chromedp.Navigate(evilURL), chromedp.WaitVisible(chromedp.CSS("#go")))
		step(t, ctx, "submit its form", chromedp.Click(chromedp.CSS("#go")))
		// The form navigates: read the new document until it is there.
		testproc.WaitFor(t, 30*time.Second, func() bool {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			text, err := chromedp.Run(c, chromedp.Evaluate[string](`document.body ? document.body.textContent : ""`))
			return err == nil && strings.Contains(text, "cross-origin request refused")
		}, "the browser shows the refusal")
		loc, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		assert.Equal(t, target, loc, "the browser did post to the server")
		var p programView
		e.getJSON("/api/v1/programs/gamma", &p)
		assert.True(t, p.Running, "gamma still runs")
		assert.Equal(t, stateRunning, p.State)
		assert.Contains(t, e.logs.String(), "cross-origin request refused")
	})

	t.Run("works with JavaScript off", func(t *testing.T) {
		tab, cancel := chromedp.NewContext(ctx) // a tab of its own
		defer cancel()
		// The tab lives as long as the context of its first action: no
		// timeout on that one.
		require.NoError(t, chromedp.Do(tab, chromedp.Navigate("about:blank")), "open a tab")
		c, cancelCall := context.WithTimeout(tab, 30*time.Second)
		defer cancelCall()
		_, err := chromedp.Call(c, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		require.NoError(t, err, "JavaScript off")
		step(t, tab, "load the page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#p-gamma.state-running")))
		// The form posts, the server redirects to the page, which shows the outcome.
		step(t, tab, "click stop", chromedp.Click(chromedp.CSS("#p-gamma .btn-stop")),
			chromedp.WaitVisible(chromedp.CSS("#p-gamma.state-stopped-by-hand")))
		flash, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#flash")))
		require.NoError(t, err)
		assert.Contains(t, flash, "gamma:")
		loc, err := chromedp.Run(tab, chromedp.Location())
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(loc, srv.URL+"/?flash="), "redirected to the page: %s", loc)
		var p programView
		e.getJSON("/api/v1/programs/gamma", &p)
		assert.False(t, p.Running, "gamma stopped")
		screenshot(t, tab, "page-nojs.png")
	})

	t.Run("the program page follows the log", func(t *testing.T) {
		log := e.path("gamma.log")
		appendFile(t, log, "first line\n")
		step(t, ctx, "load the program page", chromedp.Navigate(srv.URL+"/program/gamma"),
			chromedp.WaitVisible(chromedp.CSS("pre.tail")))
		waitJS(t, ctx, `document.querySelector("pre.tail").textContent.includes("first line")`, "the tail rendered")
		// The page's stream is open once it says "live": its log followers
		// start from the offsets of the tails shown, so nothing appended
		// from now on is missed.
		waitJS(t, ctx, `!document.getElementById("conn").hidden && document.getElementById("conn").textContent === "live"`,
			"the follow stream connected")
		appendFile(t, log, "appended <live> line\n")
		waitJS(t, ctx, `document.querySelector("pre.tail").textContent.includes("appended <live> line")`, "the appended line shown")
		assert.Contains(t, eval[string](t, ctx, `document.querySelector(".config").textContent`), "rss_limit")
		screenshot(t, ctx, "page-program.png")
	})

	t.Run("readable on a phone", func(t *testing.T) {
		step(t, ctx, "a phone's viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
			chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#p-alpha")))
		// No horizontal scrolling: the rows become cards.
		assert.LessOrEqual(t, eval[int](t, ctx, `document.documentElement.scrollWidth`), 390)
		assert.Equal(t, "none", eval[string](t, ctx, `getComputedStyle(document.querySelector("#programs thead")).display`))
		screenshot(t, ctx, "page-phone.png")
		step(t, ctx, "back to a desktop", chromedp.EmulateReset())
	})
}

// DNS rebinding in a real browser: a name that resolves to this server
// (the attacker's, rebound to 127.0.0.1) gets 421 for the page and for
// its scripts' requests, which the browser sends as same-origin; a name of
// allowed_hosts works.
func TestBrowserDNSRebinding(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	e := newUIEnv(t, []string{"alpha"}, Options{AllowedHosts: []string{"box.test"}})
	e.start("alpha")
	srv := e.server()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	ctx := newBrowser(t, chromedp.Flag("host-resolver-rules", "MAP rebind.test 127.0.0.1, MAP box.test 127.0.0.1"))

	evil := "http://rebind.test:" + port
	step(t, ctx, "the rebound page", chromedp.Navigate(evil+"/"))
	text := eval[string](t, ctx, `document.body ? document.body.textContent : ""`)
	assert.Contains(t, text, "421 Misdirected Request", "the page is refused")
	assert.NotContains(t, text, "alpha")
	// Its script, same-origin to the browser, tries the API.
	fetchStatus := func(js string) int {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		v, err := chromedp.Run(c, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
		require.NoError(t, err, js)
		return v
	}
	assert.Equal(t, http.StatusMisdirectedRequest, fetchStatus(`fetch("/api/v1/programs/alpha/stop", {method: "POST"}).then(r => r.status)`))
	assert.Equal(t, http.StatusMisdirectedRequest, fetchStatus(`fetch("/api/v1/programs").then(r => r.status)`))
	var p programView
	e.getJSON("/api/v1/programs/alpha", &p)
	assert.True(t, p.Running, "alpha still runs")

	step(t, ctx, "an allowed name", chromedp.Navigate("http://box.test:"+port+"/"), chromedp.WaitVisible(chromedp.CSS("#p-alpha")))
	assert.Equal(t, "running", eval[string](t, ctx, cellJS("alpha", "state")))
}
