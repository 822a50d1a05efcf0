package usrsvc

import (
	"math"
	"net/mail"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/usrsvc/usrsvc/internal/cfgval"
)

// Typed readers of raw values. Each reports a problem at the key's line and
// returns ok=false when the value is not acceptable. Keys whose value the
// parser already rejected (invalid) return ok=false silently.

// maxConfigSeconds caps every duration key (about 3 years): beyond it a value is
// surely a typo, and time.Duration would overflow not far above.
const maxConfigSeconds = 1e8

func (l *configLoader) boolVal(r rawVal) (bool, bool) {
	if r.invalid {
		return false, false
	}
	if v, ok := cfgval.Bool(r.value); ok {
		return v, true
	}
	l.addAt(r, "%s = %q is not a boolean; %s", r.key, r.value, cfgval.BoolHelp)
	return false, false
}

func (l *configLoader) intVal(r rawVal, what string) (int64, bool) {
	if r.invalid {
		return 0, false
	}
	v := strings.TrimSpace(r.value)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > math.MaxInt32 {
		l.addAt(r, "%s = %q is not a whole number; set it to %s", r.key, r.value, what)
		return 0, false
	}
	if n < 0 {
		l.addAt(r, "%s = %s is negative; set it to %s", r.key, v, what)
		return 0, false
	}
	return n, true
}

// decimalSeconds matches ^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$: a plain decimal
// number (no exponent, hex, Inf or NaN, which ParseFloat would take).
func decimalSeconds(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case '0' <= s[i] && s[i] <= '9':
			digits++
		case s[i] == '.' && dots == 0:
			dots++
		default:
			return false
		}
	}
	return digits > 0
}

// secondsVal reads a decimal number of seconds (fractions allowed); it must
// be > 0 when positive, else ≥ 0.
func (l *configLoader) secondsVal(r rawVal, positive bool) (time.Duration, bool) {
	if r.invalid {
		return 0, false
	}
	v := strings.TrimSpace(r.value)
	want := "a number of seconds ≥ 0 (such as 5 or 0.5)"
	if positive {
		want = "a number of seconds > 0 (such as 5 or 0.5)"
	}
	if !decimalSeconds(v) {
		l.addAt(r, "%s = %q is not a number of seconds; set it to %s", r.key, r.value, want)
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		l.addAt(r, "%s = %q is not a number of seconds; set it to %s", r.key, r.value, want)
		return 0, false
	}
	d := time.Duration(math.Round(f * float64(time.Second)))
	switch {
	case f > maxConfigSeconds:
		l.addAt(r, "%s = %s is too large (more than %.0f seconds); set it to %s", r.key, v, float64(maxConfigSeconds), want)
	case f < 0 || (positive && d <= 0):
		l.addAt(r, "%s = %s is out of range; set it to %s", r.key, v, want)
	default:
		return d, true
	}
	return 0, false
}

// pathMode says what a relative path means.
type pathMode int

const (
	pathAbs     pathMode = iota // must be absolute (after ~ expansion)
	pathRelHome                 // relative to the home directory
	pathRelDir                  // relative to a given directory
)

// pathVal reads a path: "~" and "~/…" expand to the home directory; a
// relative path is an error (pathAbs) or joined to the home directory or
// dir. The result is cleaned. An empty value returns "", true.
func (l *configLoader) pathVal(r rawVal, mode pathMode, dir string) (string, bool) {
	if r.invalid {
		return "", false
	}
	v := strings.TrimSpace(r.value)
	if v == "" {
		return "", true
	}
	if v == "~" || strings.HasPrefix(v, "~/") {
		if l.home == "" {
			l.addAt(r, "%s = %s: cannot expand ~ (%v); write the absolute path", r.key, v, l.homeErr)
			return "", false
		}
		v = filepath.Join(l.home, v[1:])
	}
	if !filepath.IsAbs(v) {
		switch mode {
		case pathRelDir:
			v = filepath.Join(dir, v)
		case pathRelHome:
			if l.home == "" {
				l.addAt(r, "%s = %s is relative to the home directory, which is unknown (%v); write an absolute path",
					r.key, v, l.homeErr)
				return "", false
			}
			v = filepath.Join(l.home, v)
		default:
			l.addAt(r, "%s = %s must be an absolute path (it may start with ~/)", r.key, v)
			return "", false
		}
	}
	return filepath.Clean(v), true
}

// emailsVal reads a comma-separated list of addresses (commas inside
// quoted display names are fine).
func (l *configLoader) emailsVal(r rawVal) ([]*mail.Address, bool) {
	if r.invalid {
		return nil, false
	}
	// A DefaultSettings value is read once, not once per program using it.
	if a, ok := l.emails[keyPos{r.file, r.line}]; ok {
		return a, true
	}
	if strings.ContainsAny(r.value, "\r\n") {
		l.addAt(r, "%s contains a line break; list addresses separated by commas on one line", r.key)
		return nil, false
	}
	if strings.TrimSpace(r.value) == "" {
		return nil, true
	}
	var addrs []*mail.Address
	ok := true
	for _, part := range splitAddresses(r.value) {
		part = strings.TrimSpace(part)
		if part == "" {
			l.addAt(r, "%s has an empty address (two commas in a row, or a comma at an end); remove it", r.key)
			ok = false
			continue
		}
		a, err := mail.ParseAddress(part)
		if err != nil {
			l.addAt(r, "%s: %q is not a valid email address (%v); write it like user@example.com or "+
				"Name <user@example.com>", r.key, part, err)
			ok = false
			continue
		}
		addrs = append(addrs, a)
	}
	if ok {
		if l.emails == nil {
			l.emails = map[keyPos][]*mail.Address{}
		}
		l.emails[keyPos{r.file, r.line}] = addrs
	}
	return addrs, ok
}

// splitAddresses splits s at commas outside double quotes and <…>.
func splitAddresses(s string) []string {
	var parts []string
	inQuote, inAngle, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == '<' && !inQuote:
			inAngle = true
		case c == '>' && !inQuote:
			inAngle = false
		case c == ',' && !inQuote && !inAngle:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// cfgDidYouMean formats suggest.Closest's answer as a message suffix, or "".
func cfgDidYouMean(word string, candidates []string) string {
	return cfgval.DidYouMean(word, candidates)
}
