// Command mangen renders usrsvc's manual pages, written in go-md2man's
// Markdown in docs/man (usrsvc.1.md, usrsvcd.8.md, usrsvcweb.8.md,
// usrsvc.cfg.5.md), into roff, laid out as a man directory:
//
//	go run ./internal/mangen -o ~/.local/share/man     # → man1/usrsvc.1, man5/usrsvc.cfg.5, man8/usrsvcd.8, ...
//
// Nothing generated is committed: systemd/install.sh runs it, and so can a
// packager (go run ./internal/mangen -o "$DESTDIR/usr/share/man"). Run it
// from the repository's root, or give -src. A page the converter warns
// about is an error: the test renders each page and reads it with man.
//
// go generate ./internal/mangen renders them into man/ at the repository's
// root, which git ignores.
package main

//go:generate go run . -src ../../docs/man -o ../../man

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cpuguy83/go-md2man/v2/md2man"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mangen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("src", filepath.Join("docs", "man"), "the directory of the Markdown pages")
	out := fs.String("o", "", "the man directory to write into (its man1, man5, man8 are created)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: go run ./internal/mangen [-src docs/man] -o MANDIR")
		return 2
	}
	pages, err := Pages(*src)
	if err != nil {
		fmt.Fprintf(stderr, "mangen: %v\n", err)
		return 1
	}
	for _, p := range pages {
		roff, err := p.Render()
		if err != nil {
			fmt.Fprintf(stderr, "mangen: %v\n", err)
			return 1
		}
		dir := filepath.Join(*out, "man"+p.Section)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintf(stderr, "mangen: %v\n", err)
			return 1
		}
		dst := filepath.Join(dir, p.Name)
		if err := os.WriteFile(dst, roff, 0o644); err != nil {
			fmt.Fprintf(stderr, "mangen: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, dst)
	}
	return 0
}

// Page is one manual page's source.
type Page struct {
	Source  string // docs/man/usrsvc.cfg.5.md
	Name    string // usrsvc.cfg.5
	Section string // 5
}

// Pages lists the pages of dir: every NAME.SECTION.md.
func Pages(dir string) ([]Page, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no manual page (*.md) in %s: run from the repository's root, or give -src", dir)
	}
	var pages []Page
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".md")
		sec := filepath.Ext(name)
		if len(sec) != 2 || sec[1] < '1' || sec[1] > '9' {
			return nil, fmt.Errorf("%s: a page is named NAME.SECTION.md (usrsvc.1.md)", f)
		}
		pages = append(pages, Page{Source: f, Name: name, Section: sec[1:]})
	}
	return pages, nil
}

// renderMu serializes the converter's use of os.Stderr (see Render).
var renderMu sync.Mutex

// Render converts the page to roff. What the converter cannot render it
// reports on os.Stderr and drops: Render captures that and returns it as
// an error.
func (p Page) Render() ([]byte, error) {
	md, err := os.ReadFile(p.Source)
	if err != nil {
		return nil, err
	}
	renderMu.Lock()
	defer renderMu.Unlock()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	saved := os.Stderr
	os.Stderr = w
	var warnings bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&warnings, r); close(done) }()
	roff := md2man.Render(md)
	os.Stderr = saved
	w.Close()
	<-done
	r.Close()
	if warnings.Len() > 0 {
		return nil, fmt.Errorf("%s: %s", p.Source, strings.TrimSpace(warnings.String()))
	}
	return plainLayout(roff), nil
}

// plainLayout turns hyphenation and justification off after the title:
// the converter's .nh comes before .TH, which resets it, and a key name
// such as term_to_kill_seconds must never be cut in two.
func plainLayout(roff []byte) []byte {
	i := bytes.Index(roff, []byte("\n.TH "))
	if i < 0 {
		return roff
	}
	end := bytes.IndexByte(roff[i+1:], '\n')
	if end < 0 {
		return roff
	}
	at := i + 1 + end + 1
	return append(roff[:at:at], append([]byte(".nr HY 0\n.nh\n.ad l\n"), roff[at:]...)...)
}
