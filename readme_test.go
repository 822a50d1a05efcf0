package usrsvc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMEGoPrograms: every Go block of the README is a complete program
// that builds and passes go vet against this checkout, as a user's module
// would use it (a replace directive). A fragment would not build: the
// README shows only what compiles.
func TestREADMEGoPrograms(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("README.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)\n```go\n(.*?)\n```\n").FindAllStringSubmatch(string(data), -1)
	require.NotEmpty(t, blocks)

	repo, err := filepath.Abs(".")
	require.NoError(t, err)
	dir := t.TempDir()
	gomod := fmt.Sprintf("module readme.example\n\ngo 1.26.0\n\nrequire github.com/usrsvc/usrsvc v0.0.0\n\n"+
		"replace github.com/usrsvc/usrsvc => %s\n", repo)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o600))
	sum, err := os.ReadFile("go.sum")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o600))
	for i, b := range blocks {
		src := b[1]
		require.True(t, strings.HasPrefix(src, "package "),
			"README Go block %d is not a complete file (it must start with package):\n%s", i+1, src)
		sub := filepath.Join(dir, fmt.Sprintf("block%d", i+1))
		require.NoError(t, os.Mkdir(sub, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(sub, "main.go"), []byte(src+"\n"), 0o600))
	}
	for _, args := range [][]string{{"mod", "tidy"}, {"vet", "./..."}, {"build", "-o", os.DevNull, "./..."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s of the README's Go programs:\n%s", strings.Join(args, " "), out)
	}
}
