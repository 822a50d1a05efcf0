package web

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// The health badge and the Reload button in headless Chromium: the badge
// turns unhealthy live, its reason in its tooltip and on the program's
// page; Reload is offered only for a program with a reload_signal, and
// sends it without reloading the page.
func TestBrowserHealthAndReload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	w := newHealthWorld(t, Options{})
	w.runDaemon()
	testproc.WaitFor(t, 30*time.Second, func() bool {
		return w.program("api").Health == healthHealthy && w.program("hupper").Running
	}, "api healthy, hupper running")
	srv := w.server()
	ctx := newBrowser(t)

	step(t, ctx, "load the page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#p-hupper")))
	waitJS(t, ctx, `document.getElementById("conn").textContent === "live"`, "the live stream connected")
	eval[bool](t, ctx, `window.notReloaded = true`)
	assert.Equal(t, "healthy", eval[string](t, ctx, cellJS("api", "health")))
	assert.Equal(t, "–", eval[string](t, ctx, cellJS("hupper", "health")), "no checks, no health")
	visible := func(sel string) bool {
		return eval[bool](t, ctx, fmt.Sprintf(`getComputedStyle(document.querySelector(%q)).display !== "none"`, sel))
	}
	assert.True(t, visible("#p-hupper .btn-reload"), "hupper has a reload_signal")
	assert.False(t, visible("#p-api .btn-reload"), "api has none")

	// Unhealthy: the badge changes without a reload, the reason in its
	// tooltip.
	require.NoError(t, os.WriteFile(w.status, []byte("503"), 0o600))
	waitJS(t, ctx, cellJS("api", "health")+` === "unhealthy"`, "api shown unhealthy")
	title := eval[string](t, ctx, `document.querySelector('#p-api [data-f="health"]').title`)
	assert.Contains(t, title, "http_check http://127.0.0.1:"+w.port+"/healthz: status 503")
	assert.True(t, eval[bool](t, ctx, `document.querySelector('#p-api [data-f="health"]').classList.contains("health-unhealthy")`))
	assert.True(t, eval[bool](t, ctx, `window.notReloaded === true`), "the page was not reloaded")
	screenshot(t, ctx, "page-unhealthy.png")

	// Reload: through the API, the row stays, the process gets SIGHUP.
	pid := w.program("hupper").PID
	step(t, ctx, "click reload", chromedp.Click(chromedp.CSS("#p-hupper .btn-reload")))
	waitJS(t, ctx, `document.getElementById("flash").textContent.startsWith("hupper:")`, "the outcome shown")
	testproc.WaitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(w.hups)
		return strings.Contains(string(data), fmt.Sprintf("hup %d\n", pid))
	}, "hupper got SIGHUP")
	assert.Equal(t, fmt.Sprint(pid), eval[string](t, ctx, cellJS("hupper", "pid")), "the same process")
	assert.True(t, eval[bool](t, ctx, `window.notReloaded === true`), "the page was not reloaded")

	// The program's page: the badge, the reason, the configuration.
	step(t, ctx, "the program page", chromedp.Navigate(srv.URL+"/program/api"), chromedp.WaitVisible(chromedp.CSS(".config")))
	assert.Equal(t, "unhealthy", eval[string](t, ctx, cellJS("api", "health")))
	assert.Contains(t, eval[string](t, ctx, cellJS("api", "health_reason")), "status 503")
	config := eval[string](t, ctx, `document.querySelector(".config").textContent`)
	for _, k := range []string{"stop_signal", "stop_group", "reload_signal", "ready", "http_check"} {
		assert.Contains(t, config, k)
	}
	// Healthy again, live.
	require.NoError(t, os.Remove(w.status))
	waitJS(t, ctx, cellJS("api", "health")+` === "healthy"`, "api shown healthy again")
	assert.Equal(t, "", eval[string](t, ctx, cellJS("api", "health_reason")))
	screenshot(t, ctx, "page-program-health.png")
}
