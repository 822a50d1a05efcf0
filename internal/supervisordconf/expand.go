package supervisordconf

import (
	"fmt"
	"strconv"
	"strings"
)

// Expand replaces each "%(name)FORMAT" of s with vars[name] formatted as
// Python's "%" operator does ("%(process_num)02d" with 3 gives "03"), and
// "%%" with "%": supervisord's expansion of its values. A value of vars is
// a string or an int. keep, when not nil and true for an expansion, leaves
// it as written (usrsvc expands "%(process_num)02d" itself). used lists the
// names expanded, in order.
//
// Supported formats: the conversions s, r, d, i, u, x, X and o with the
// flags "-", "0", "+" and " ", a width and a precision: what configuration
// files use. A "%" alone, an unknown name or a number format of a string is
// an error, as it is for supervisord.
func Expand(s string, vars map[string]any, keep func(name, format string) bool) (out string, used []string, err error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			return b.String(), used, nil
		}
		b.WriteString(s[:i])
		s = s[i:]
		if strings.HasPrefix(s, "%%") {
			b.WriteByte('%')
			s = s[2:]
			continue
		}
		if !strings.HasPrefix(s, "%(") {
			return "", used, fmt.Errorf("a lone %% in %q: write %%%% for a percent sign, %%(name)s for an expansion", clip(s))
		}
		end := strings.IndexByte(s, ')')
		if end < 0 {
			return "", used, fmt.Errorf("%q has no closing parenthesis", clip(s))
		}
		name := s[2:end]
		n := formatLen(s[end+1:])
		if n == 0 {
			return "", used, fmt.Errorf("%q: a format (s, d, ...) must follow %%(%s)", clip(s), name)
		}
		format := s[end+1 : end+1+n]
		whole := s[:end+1+n]
		s = s[end+1+n:]
		if keep != nil && keep(name, format) {
			b.WriteString(whole)
			continue
		}
		v, ok := vars[name]
		if !ok {
			return "", used, fmt.Errorf("%s: no value named %q", whole, name)
		}
		text, err := format1(format, v)
		if err != nil {
			return "", used, fmt.Errorf("%s: %v", whole, err)
		}
		b.WriteString(text)
		used = append(used, name)
	}
}

// formatLen is the length of the format at the start of s: flags, width,
// precision, an optional length modifier and the conversion; 0 when s does
// not start with a supported one.
func formatLen(s string) int {
	i := 0
	for i < len(s) && strings.IndexByte("#0- +", s[i]) >= 0 {
		i++
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && strings.IndexByte("hlL", s[i]) >= 0 {
		i++
	}
	if i < len(s) && strings.IndexByte("srdiuxXo", s[i]) >= 0 {
		return i + 1
	}
	return 0
}

// format1 formats v (a string or an int) with a Python conversion
// specification such as "02d" or "s".
func format1(spec string, v any) (string, error) {
	conv := spec[len(spec)-1]
	mods := strings.Map(func(r rune) rune {
		if r == 'h' || r == 'l' || r == 'L' || r == '#' {
			return -1
		}
		return r
	}, spec[:len(spec)-1])
	switch conv {
	case 's', 'r':
		text := fmt.Sprint(v)
		if str, ok := v.(string); ok && conv == 'r' {
			text = "'" + str + "'"
		}
		return fmt.Sprintf("%"+strings.ReplaceAll(mods, "0", "")+"s", text), nil
	}
	n, ok := v.(int)
	if !ok {
		// Python takes a number in a string neither: "%d format: a real
		// number is required, not str".
		return "", fmt.Errorf("%%%c needs a number, and the value %q is text", conv, v)
	}
	verb := string(conv)
	if conv == 'i' || conv == 'u' {
		verb = "d"
	}
	if w, p, ok := strings.Cut(mods, "."); ok { // precision: the minimum of digits
		digits := strconv.Itoa(max(n, -n))
		if pn, _ := strconv.Atoi(p); len(digits) < pn {
			digits = strings.Repeat("0", pn-len(digits)) + digits
		}
		if n < 0 {
			digits = "-" + digits
		}
		return fmt.Sprintf("%"+strings.ReplaceAll(w, "0", "")+"s", digits), nil
	}
	return fmt.Sprintf("%"+mods+verb, n), nil
}

func clip(s string) string {
	if len(s) > 30 {
		return s[:30] + "…"
	}
	return s
}
