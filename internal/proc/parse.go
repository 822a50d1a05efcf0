package proc

import (
	"bytes"
	"fmt"
	"strings"
)

// Field numbers of /proc/PID/stat (proc(5), 1-based) used here.
const (
	fieldState     = 3
	fieldPPID      = 4
	fieldPGID      = 5
	fieldSID       = 6
	fieldUTime     = 14
	fieldSTime     = 15
	fieldThreads   = 20
	fieldStartTime = 22
	fieldRSS       = 24
	fieldExitCode  = 52
)

// parseStat parses the content of /proc/PID/stat into p (PID, PPID, PGID, SID, State,
// Comm, UTime, STime, Threads, StartTicks, RSSPages, ExitCode). The comm may hold any
// byte, ')' and spaces included: it runs from the first '(' to the LAST ')'.
// Fields up to rss (24) are required; exit_code (52) is optional.
func parseStat(b []byte, p *Process) error {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 1 || closing < open {
		return fmt.Errorf("stat: no (comm): %w", ErrFormat)
	}
	pid, ok := atoi(bytes.TrimSpace(b[:open]))
	if !ok {
		return fmt.Errorf("stat: bad pid %q: %w", b[:open], ErrFormat)
	}
	rest := b[closing+1:]
	field := 2 // the comm
	for i := 0; i < len(rest) && field < fieldExitCode; {
		for i < len(rest) && (rest[i] == ' ' || rest[i] == '\n') {
			i++
		}
		if i == len(rest) {
			break
		}
		start := i
		for i < len(rest) && rest[i] != ' ' && rest[i] != '\n' {
			i++
		}
		tok := rest[start:i]
		field++
		var err error
		switch field {
		case fieldState:
			if len(tok) != 1 {
				return fmt.Errorf("stat: bad state %q: %w", tok, ErrFormat)
			}
			p.State = tok[0]
		case fieldPPID:
			p.PPID, err = statInt(tok, field)
		case fieldPGID:
			p.PGID, err = statInt(tok, field)
		case fieldSID:
			p.SID, err = statInt(tok, field)
		case fieldUTime:
			p.UTime, err = statUint(tok, field)
		case fieldSTime:
			p.STime, err = statUint(tok, field)
		case fieldThreads:
			p.Threads, err = statInt(tok, field)
		case fieldStartTime:
			p.StartTicks, err = statUint(tok, field)
		case fieldRSS:
			var n int
			n, err = statInt(tok, field)
			p.RSSPages = int64(n)
		case fieldExitCode:
			p.ExitCode, err = statInt(tok, field)
		}
		if err != nil {
			return err
		}
	}
	if field < fieldRSS {
		return fmt.Errorf("stat: %d fields, want at least %d: %w", field, fieldRSS, ErrFormat)
	}
	if field < fieldExitCode {
		p.ExitCode = 0
	}
	p.PID = pid
	p.Comm = string(b[open+1 : closing])
	return nil
}

func statInt(tok []byte, field int) (int, error) {
	neg := len(tok) > 0 && tok[0] == '-'
	if neg {
		tok = tok[1:]
	}
	n, ok := atoi(tok)
	if !ok {
		return 0, fmt.Errorf("stat: field %d: bad number %q: %w", field, tok, ErrFormat)
	}
	if neg {
		n = -n
	}
	return n, nil
}

func statUint(tok []byte, field int) (uint64, error) {
	n, ok := atou(tok)
	if !ok {
		return 0, fmt.Errorf("stat: field %d: bad number %q: %w", field, tok, ErrFormat)
	}
	return n, nil
}

// atou parses a non-empty run of decimal digits; it fails on anything else
// and on overflow.
func atou(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// atoi is atou limited to a non-negative int.
func atoi(b []byte) (int, bool) {
	n, ok := atou(b)
	if !ok || n > 1<<62 {
		return 0, false
	}
	return int(n), true
}

// parseCmdline sets p.Args and p.Title from the content of /proc/PID/cmdline.
// It allocates one string for the whole line; Args and Title share it.
func parseCmdline(b []byte, p *Process) {
	// Trailing NULs are trailing empty arguments: drop them.
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		p.Args, p.Title = nil, ""
		return
	}
	n := bytes.Count(b, []byte{0}) + 1
	args := make([]string, 0, n)
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		if c == 0 {
			c = ' '
		}
		sb.WriteByte(c)
	}
	s := sb.String()
	start := 0
	for i, c := range b {
		if c == 0 {
			args = append(args, s[start:i])
			start = i + 1
		}
	}
	args = append(args, s[start:])
	p.Args = args
	p.Title = strings.TrimRight(s, " ")
}

// Title joins args the way the kernel's cmdline becomes a process title:
// by single spaces, trailing spaces dropped.
func Title(args []string) string {
	return strings.TrimRight(strings.Join(args, " "), " \x00")
}
