package supervisordconf

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Config is a supervisord configuration: its main file and, when followed,
// the files its [include] section names, merged as supervisord merges them
// (a section in several files is one section; a later file's key overrides
// an earlier one's).
type Config struct {
	Path     string     // the main file, absolute
	Sections []*Section // merged, in the order of their first appearance; [DEFAULT] keys applied
	Files    []string   // every file read, the main one first
	// Includes are the [include] files = globs of the main file, with the
	// files each matched (sorted, absolute); Followed says whether they
	// were read. Included files cannot include in turn: their [include]
	// sections are in Ignored.
	Includes []Include
	Followed bool
	Ignored  []*Section
	// Problems are the lines supervisord would refuse ("file:line: ...")
	// and the globs that match nothing.
	Problems []string
}

// Include is one glob of [include] files =.
type Include struct {
	Pattern string   // as written (after expansion), relative to the main file's directory
	Files   []string // what it matches, sorted
	Key     *Key
}

// Section returns the section named name, or nil.
func (c *Config) Section(name string) *Section {
	for _, s := range c.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Load reads the supervisord configuration at path. With follow, the files
// of its [include] section are read too, as supervisord reads them: each
// glob relative to the main file's directory, its matches in sorted order.
// vars are the expansions [include] files = may use (host_node_name, ENV_X);
// here is added. An error is returned only when the main file cannot be
// read.
func Load(path string, follow bool, vars map[string]any) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, err
	}
	main := Parse(abs, data)
	c := &Config{Path: abs, Files: []string{abs}, Followed: follow}
	c.Problems = append(c.Problems, main.Problems...)
	files := []*File{main}
	for _, s := range main.Sections {
		if s.Name != "include" {
			continue
		}
		k := s.Get("files")
		if k == nil {
			c.Problems = append(c.Problems, fmt.Sprintf("%s:%d: [include] has no files = setting", abs, s.Line))
			continue
		}
		v := maps(vars, "here", filepath.Dir(abs))
		text, _, err := Expand(k.Value, v, nil)
		if err != nil {
			c.Problems = append(c.Problems, fmt.Sprintf("%s:%d: files: %v", k.File, k.Line, err))
			continue
		}
		for _, pattern := range strings.Fields(text) {
			full := pattern
			if !filepath.IsAbs(full) {
				full = filepath.Join(filepath.Dir(abs), full)
			}
			matches, err := filepath.Glob(full)
			if err != nil {
				c.Problems = append(c.Problems, fmt.Sprintf("%s:%d: files: %s: %v", k.File, k.Line, pattern, err))
				continue
			}
			slices.Sort(matches)
			c.Includes = append(c.Includes, Include{Pattern: pattern, Files: matches, Key: k})
			if len(matches) == 0 {
				c.Problems = append(c.Problems, fmt.Sprintf("%s:%d: no file matches the include %q", k.File, k.Line, full))
			}
			if !follow {
				continue
			}
			for _, m := range matches {
				data, err := os.ReadFile(m)
				if err != nil {
					c.Problems = append(c.Problems, fmt.Sprintf("%s:%d: cannot read the included %s: %v", k.File, k.Line, m, err))
					continue
				}
				f := Parse(m, data)
				c.Problems = append(c.Problems, f.Problems...)
				c.Files = append(c.Files, m)
				files = append(files, f)
			}
		}
	}
	c.merge(files)
	return c, nil
}

// merge builds c.Sections from files in reading order.
func (c *Config) merge(files []*File) {
	byName := map[string]*Section{}
	var defaults *Section
	for i, f := range files {
		for _, s := range f.Sections {
			if i > 0 && s.Name == "include" {
				c.Ignored = append(c.Ignored, s)
				continue
			}
			m := byName[s.Name]
			if m == nil {
				m = &Section{Name: s.Name, File: s.File, Line: s.Line}
				byName[s.Name] = m
				if s.Name == "DEFAULT" {
					defaults = m
				} else {
					c.Sections = append(c.Sections, m)
				}
			}
			for _, k := range s.Keys {
				if old := m.Get(k.Name); old != nil {
					*old = *k
				} else {
					kc := *k
					m.Keys = append(m.Keys, &kc)
				}
			}
		}
	}
	if defaults == nil {
		return
	}
	for _, s := range c.Sections {
		for _, d := range defaults.Keys {
			if s.Get(d.Name) == nil {
				dc := *d
				s.Keys = append(s.Keys, &dc)
			}
		}
	}
}

// maps returns a copy of vars with key set to value.
func maps(vars map[string]any, key string, value any) map[string]any {
	out := make(map[string]any, len(vars)+1)
	for k, v := range vars {
		out[k] = v
	}
	out[key] = value
	return out
}
