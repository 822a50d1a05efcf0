package web

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The scrape config and alerting rules that docs/usrsvcweb.md shows are the
// files in examples/prometheus: promtool checks them, and its rule unit
// test proves each alert fires when it should (and not for a program
// stopped by hand).
func TestPrometheusExamples(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "examples", "prometheus")
	doc, err := os.ReadFile(filepath.Join("..", "docs", "usrsvcweb.md"))
	require.NoError(t, err)
	for _, f := range []string{"prometheus.yml", "usrsvc-rules.yml"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Contains(t, string(doc), "```yaml\n"+string(b)+"```", "docs/usrsvcweb.md shows %s as it is", f)
	}
	promtool := promtoolPath(t)
	if promtool == "" {
		return
	}
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "usrsvc-rules.yml"},
		{"test", "rules", "usrsvc-rules.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		assert.NoError(t, cmd.Run(), "promtool %s:\n%s", strings.Join(args, " "), out.String())
	}
}

// promtoolPath finds promtool; "" when missing (a failure under CI, where
// .ci/run installs it).
func promtoolPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("promtool is missing under CI: .ci/run installs it (apt-get install prometheus)")
	}
	t.Log("promtool not installed (apt-get install prometheus): not checked")
	return ""
}
