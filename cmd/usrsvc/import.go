package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/svimport"
	"github.com/usrsvc/usrsvc/web"
)

// runImport converts a supervisord configuration: on stdout (one main
// file), or with -o DIR into DIR/usrsvc.cfg and DIR/usrsvc.d/*.cfg. The
// notes and a summary go to stderr; the result is checked as usrsvcd
// checkconfig would check it: 130 when it does not pass.
func runImport(o *options, stdout, stderr io.Writer) int {
	if len(o.args) != 2 {
		o.cmd.UsageError("import takes one supervisord configuration file: usrsvc import [--include] [-o DIR] FILE")
		return int(exitcode.InvalidAction)
	}
	res, err := svimport.Convert(o.args[1], svimport.Options{Include: o.include})
	if err != nil {
		fmt.Fprintf(stderr, "usrsvc import: %v\n", err)
		return int(exitcode.InsufficientPermissions)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "usrsvc import: warning: %s\n", w)
	}
	files := res.Files()
	shown := o.output
	if o.output == "" {
		files = []svimport.File{{Name: "usrsvc.cfg", Text: res.Single()}}
		shown = "(stdout)"
	}
	problems, err := checkImported(files, shown)
	if err != nil {
		fmt.Fprintf(stderr, "usrsvc import: cannot check the result: %v\n", err)
	}
	if o.output == "" {
		fmt.Fprint(stdout, files[0].Text)
	} else if err := writeImported(o.output, files); err != nil {
		fmt.Fprintf(stderr, "usrsvc import: %v\n", err)
		return int(exitcode.InsufficientPermissions)
	} else {
		fmt.Fprintf(stderr, "usrsvc import: wrote %s and %d files in %s\n", filepath.Join(o.output, "usrsvc.cfg"),
			len(files)-1, filepath.Join(o.output, svimport.ConfigDir))
	}
	fmt.Fprintf(stderr, "usrsvc import: %s\n", res.Summary())
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "usrsvc import: the result does not pass usrsvcd checkconfig yet (%s):\n", plural(len(problems), "problem"))
		for _, p := range problems {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		return int(exitcode.InvalidConfig)
	}
	return 0
}

// checkImported loads files as usrsvcd checkconfig does, from a private
// temporary directory, and returns the problems with shown in place of
// that directory.
func checkImported(files []svimport.File, shown string) ([]string, error) {
	dir, err := os.MkdirTemp("", "usrsvc-import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := writeImported(dir, files); err != nil {
		return nil, err
	}
	main := filepath.Join(dir, "usrsvc.cfg")
	cfg, err := usrsvc.LoadConfig(main)
	if err == nil {
		_, err = web.LoadConfig(cfg)
	}
	if err == nil {
		return nil, nil
	}
	var ce *usrsvc.ConfigError
	if !errors.As(err, &ce) {
		return []string{err.Error()}, nil
	}
	out := make([]string, len(ce.Problems))
	for i, p := range ce.Problems {
		if shown == "(stdout)" {
			p = strings.ReplaceAll(p, main, shown)
		}
		out[i] = strings.ReplaceAll(p, dir, shown)
	}
	return out, nil
}

// writeImported writes files into dir, created 0700, each file 0600 (a
// supervisord environment often holds secrets). It refuses to replace an
// existing file.
func writeImported(dir string, files []svimport.File) error {
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s exists: usrsvc import does not replace files; choose a new or empty directory", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.WriteString(fh, f.Text)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	return nil
}
