// Package envfile reads environment files: KEY=VALUE lines, as systemd's
// EnvironmentFile= and the .env files of web frameworks hold them.
//
// The format:
//   - one KEY=VALUE per line; KEY is letters, digits and _, not starting
//     with a digit; an optional "export " before it is ignored;
//   - blank lines and lines starting with # are ignored;
//   - VALUE is taken as written after the =, trimmed of blanks; or quoted:
//     'single quotes' keep everything inside as is, "double quotes" take
//     \" for a quote and \\ for a backslash (other backslashes stay);
//     nothing but a comment may follow the closing quote;
//   - no expansion of $VAR and no multi-line values.
package envfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// MaxSize bounds an environment file.
const MaxSize = 1 << 20

// LineError is a line that is not KEY=VALUE.
type LineError struct {
	File string
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Read reads the file at path and returns its variables as KEY=VALUE, in
// file order (a key set twice keeps its last value, at its first place).
// A bad line is a *LineError; the file must be a regular file, not
// writable by group or others (whoever can write it sets the program's
// environment).
func Read(path string) ([]string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, &UnsafeError{Path: path, Mode: fi.Mode().Perm()}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s is larger than %d bytes: not an environment file", path, MaxSize)
	}
	return Parse(path, string(data))
}

// UnsafeError is an environment file that other accounts can write.
type UnsafeError struct {
	Path string
	Mode os.FileMode
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("%s is writable by group or others (mode %04o), so another user could set the program's environment; refused: run chmod go-w %s",
		e.Path, e.Mode, e.Path)
}

// Parse reads the variables of data, naming it name in errors.
func Parse(name, data string) ([]string, error) {
	var out []string
	at := map[string]int{}
	for i, line := range strings.Split(data, "\n") {
		kv, err := parseLine(strings.TrimSuffix(line, "\r"))
		if err != nil {
			return nil, &LineError{File: name, Line: i + 1, Msg: err.Error()}
		}
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if j, ok := at[k]; ok {
			out[j] = kv
			continue
		}
		at[k] = len(out)
		out = append(out, kv)
	}
	return out, nil
}

// parseLine returns KEY=VALUE, or "" for a blank or comment line.
func parseLine(line string) (string, error) {
	s := strings.TrimSpace(line)
	if s == "" || strings.HasPrefix(s, "#") {
		return "", nil
	}
	if rest, ok := strings.CutPrefix(s, "export "); ok {
		s = strings.TrimSpace(rest)
	}
	key, value, ok := strings.Cut(s, "=")
	key = strings.TrimSpace(key)
	if !ok {
		return "", fmt.Errorf("%q is not KEY=VALUE", truncate(s))
	}
	if !validName(key) {
		return "", fmt.Errorf("%q is not a variable name (letters, digits and _, not starting with a digit)", truncate(key))
	}
	value = strings.TrimSpace(value)
	v, err := unquote(value)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return "", fmt.Errorf("%s holds a NUL byte", key)
	}
	return key + "=" + v, nil
}

// unquote reads a value: as written, 'single-quoted' or "double-quoted".
func unquote(v string) (string, error) {
	if v == "" || (v[0] != '\'' && v[0] != '"') {
		return v, nil
	}
	q := v[0]
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == q:
			rest := strings.TrimSpace(v[i+1:])
			if rest != "" && !strings.HasPrefix(rest, "#") {
				return "", fmt.Errorf("text after the closing quote: %q (quote the whole value)", truncate(rest))
			}
			return b.String(), nil
		case q == '"' && c == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\'):
			b.WriteByte(v[i+1])
			i++
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("the value starts with a quote that never closes on its line")
}

func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
