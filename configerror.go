package usrsvc

import (
	"fmt"
	"strings"
)

// ConfigError is returned by [LoadConfig] when the configuration does not
// load. It holds every problem found, not only the first, each with the file
// and line it concerns, sorted by file (the main file first, then
// config_dir and its files by name) and then by line. It maps to
// [CodeInvalidConfig] and wraps [ErrInvalidConfig].
type ConfigError struct {
	Problems []Problem
}

// Problem is one configuration problem: where it is and what to do about it.
type Problem struct {
	File string // absolute path of the file concerned
	Line int    // 1-based line; 0 when the problem concerns the whole file (missing, unreadable, unsafe mode or owner, no [Main])
	Msg  string // what is wrong and what to do
}

// String formats the problem as "file:line: message".
func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Error lists every problem, one per line.
func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is(err, ErrInvalidConfig) hold.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }
