package usrsvc

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// manualFiles are the Markdown files a user reads: README.md and the other
// top-level ones (BENCHMARKS.md, RELIABILITY.md, SECURITY.md), and every
// file of docs/, its subdirectories included.
func manualFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	require.NoError(t, err)
	require.Contains(t, files, "README.md")
	err = filepath.WalkDir("docs", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return err
	})
	require.NoError(t, err)
	require.Contains(t, files, filepath.Join("docs", "configuration.md"))
	return files
}

// TestREADMEAndDocsGoPrograms: every Go block of the README and of the
// documents in docs/ is a complete program that builds and passes go vet
// against this checkout, as a user's module would use it (a replace
// directive). A fragment would not build: the manual shows only what
// compiles.
func TestREADMEAndDocsGoPrograms(t *testing.T) {
	t.Parallel()
	goBlock := regexp.MustCompile("(?s)\n```go\n(.*?)\n```\n")
	repo, err := filepath.Abs(".")
	require.NoError(t, err)
	dir := t.TempDir()
	gomod := fmt.Sprintf("module readme.example\n\ngo 1.26.0\n\nrequire github.com/usrsvc/usrsvc v0.0.0\n\n"+
		"replace github.com/usrsvc/usrsvc => %s\n", repo)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o600))
	sum, err := os.ReadFile("go.sum")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o600))
	n := 0
	for _, doc := range manualFiles(t) {
		data, err := os.ReadFile(doc)
		require.NoError(t, err)
		for i, b := range goBlock.FindAllStringSubmatch(string(data), -1) {
			src := b[1]
			require.True(t, strings.HasPrefix(src, "package "),
				"%s: Go block %d is not a complete file (it must start with package):\n%s", doc, i+1, src)
			n++
			sub := filepath.Join(dir, fmt.Sprintf("block%d", n))
			require.NoError(t, os.Mkdir(sub, 0o700))
			header := fmt.Sprintf("// Go block %d of %s.\n\n", i+1, doc)
			require.NoError(t, os.WriteFile(filepath.Join(sub, "main.go"), []byte(header+src+"\n"), 0o600))
		}
	}
	require.NotZero(t, n, "no Go block in the README nor in docs/")
	for _, args := range [][]string{{"mod", "tidy"}, {"vet", "./..."}, {"build", "-o", os.DevNull, "./..."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s of the Go programs of the README and docs/:\n%s", strings.Join(args, " "), out)
	}
}

// mdDoc is what the link check needs of a Markdown file: its links and
// the anchors of its headings.
type mdDoc struct {
	links   []mdLink
	anchors map[string]bool
}

type mdLink struct {
	line   int
	target string
}

var (
	mdFence    = regexp.MustCompile("^\\s*(```|~~~)")
	mdHeading  = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	mdCodeSpan = regexp.MustCompile("`+[^`]*`+")
	mdLinkRE   = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
)

// parseMarkdown reads the links (outside code) and heading anchors of a
// Markdown text.
func parseMarkdown(text string) mdDoc {
	d := mdDoc{anchors: map[string]bool{}}
	seen := map[string]int{}
	inFence := false
	for i, line := range strings.Split(text, "\n") {
		if mdFence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if m := mdHeading.FindStringSubmatch(line); m != nil {
			a := headingAnchor(m[2])
			if n := seen[a]; n > 0 {
				d.anchors[fmt.Sprintf("%s-%d", a, n)] = true
			} else {
				d.anchors[a] = true
			}
			seen[a]++
		}
		for _, m := range mdLinkRE.FindAllStringSubmatch(mdCodeSpan.ReplaceAllString(line, ""), -1) {
			d.links = append(d.links, mdLink{i + 1, m[1]})
		}
	}
	return d
}

// headingAnchor is the anchor GitHub gives a heading: lower case, every
// character but letters, digits, '_', '-' and spaces dropped, spaces
// turned into '-'.
func headingAnchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '_' || r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

func TestHeadingAnchor(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]string{
		"`[Program:NAME]`":                                 "programname",
		"Dependencies: `depends_on`":                       "dependencies-depends_on",
		"Finding a program's process":                      "finding-a-programs-process",
		"KillMode=process, and what `systemctl stop` does": "killmodeprocess-and-what-systemctl-stop-does",
		"`[program:x]` → `[Program:x]`":                    "programx--programx",
		"Memory: what usrsvcd holds and why":               "memory-what-usrsvcd-holds-and-why",
	} {
		assert.Equal(t, want, headingAnchor(h), h)
	}
}

// TestREADMEAndDocsLinks: every relative link of the README, the other
// top-level documents and docs/ names a file or directory of the
// repository, and every #anchor a heading of its file.
func TestREADMEAndDocsLinks(t *testing.T) {
	t.Parallel()
	docs := map[string]mdDoc{}
	files := manualFiles(t)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		docs[f] = parseMarkdown(string(data))
	}
	links := 0
	for _, f := range files {
		for _, l := range docs[f].links {
			if strings.Contains(l.target, "://") || strings.HasPrefix(l.target, "mailto:") {
				continue
			}
			links++
			path, anchor, _ := strings.Cut(l.target, "#")
			target := f
			if path != "" {
				target = filepath.Clean(filepath.Join(filepath.Dir(f), path))
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s:%d: link to %s: %v", f, l.line, l.target, err)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			d, ok := docs[target]
			if !ok && strings.HasSuffix(target, ".md") {
				data, err := os.ReadFile(target)
				require.NoError(t, err)
				d = parseMarkdown(string(data))
			}
			if !d.anchors[anchor] {
				var have []string
				for a := range d.anchors {
					have = append(have, a)
				}
				slices.Sort(have)
				t.Errorf("%s:%d: link to %s: %s has no heading with the anchor #%s (it has: %s)",
					f, l.line, l.target, target, anchor, strings.Join(have, ", "))
			}
		}
	}
	assert.Greater(t, links, 50, "the link check found too few links: is its pattern still right?")
}

// docs/configuration.md, the configuration reference, documents every
// section and key the loader knows, every hook event and every key in
// which numprocs expands %(process_num)d.
func TestConfigurationManualHasEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("docs", "configuration.md"))
	require.NoError(t, err)
	text := string(data)
	for _, s := range []string{"[Main]", "[Web]", "[Program:NAME]", "[[Env]]", "[[Monitor]]", "[[Monitoring]]",
		"[[Hook]]", "[DefaultSettings:NAME]", "[Group:NAME]", "%(process_num)d", "%(process_num)02d", "%(program_name)s"} {
		assert.Contains(t, text, "`"+s+"`", "docs/configuration.md does not name %s", s)
	}
	documented := func(k string) bool {
		// A key is documented in a table's first column ("| key |", "| a, key |")
		// or named as code (`key`).
		re := regexp.MustCompile("(?m)(^\\| *|, |`)" + regexp.QuoteMeta(k) + "( *\\||,|`)")
		return re.MatchString(text)
	}
	var keys []string
	keys = append(keys, cfgMainKeys...)
	keys = append(keys, cfgProgramKeys...)
	for alias := range cfgProgramKeyAliases {
		keys = append(keys, alias)
	}
	keys = append(keys, cfgMonitorKeys...)
	keys = append(keys, cfgHookKeys...)
	keys = append(keys, cfgGroupKeys...)
	keys = append(keys, hookEvents...)
	keys = append(keys, expandedKeys...)
	for _, k := range keys {
		assert.True(t, documented(k), "docs/configuration.md does not document %s", k)
	}
}
