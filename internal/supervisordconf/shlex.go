package supervisordconf

import (
	"errors"
	"fmt"
	"strings"
)

// Split splits a command line into its arguments as supervisord does
// (Python's shlex.split, POSIX mode): whitespace separates; '…' keeps
// everything; "…" keeps everything but lets a backslash escape " and \;
// outside quotes a backslash escapes any character. Nothing else is
// special: "$HOME", ">", "|" and "~" are plain characters of an argument.
func Split(command string) ([]string, error) {
	l := &lexer{in: []rune(command), split: true}
	var out []string
	for {
		tok, ok, err := l.token()
		if err != nil || !ok {
			return out, err
		}
		out = append(out, tok)
	}
}

// Pair is one KEY=value of an environment list.
type Pair struct{ Key, Value string }

// Pairs parses supervisord's environment list, KEY="value",KEY2='v2',
// as supervisord does (a shlex tokenizer where "/.+-():" are word
// characters, "#" starts a comment): KEY = VALUE triples, each followed by
// one separator. A key given twice keeps its first place and its last
// value.
func Pairs(list string) ([]Pair, error) {
	l := &lexer{in: []rune(list), extra: "/.+-():", comments: true}
	var toks []string
	for {
		tok, ok, err := l.token()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		toks = append(toks, tok)
	}
	var out []Pair
	index := map[string]int{}
	for i := 0; i < len(toks); i += 4 {
		if i+2 >= len(toks) || toks[i+1] != "=" {
			return nil, fmt.Errorf("%q is not a list of KEY=\"value\" separated by commas", list)
		}
		if j, ok := index[toks[i]]; ok {
			out[j].Value = toks[i+2]
			continue
		}
		index[toks[i]] = len(out)
		out = append(out, Pair{toks[i], toks[i+2]})
	}
	return out, nil
}

// lexer is Python's shlex.shlex in POSIX mode, without punctuation_chars:
// the tokenizer supervisord splits commands (split) and environment lists
// (extra word characters, comments) with.
type lexer struct {
	in       []rune
	pos      int
	state    rune // ' ' between tokens, 'a' in a word, a quote, '\\' after an escape, 0 at the end
	split    bool // whitespace_split: every non-blank character is a word character
	extra    string
	comments bool // "#" starts a comment up to the end of the line
}

const posixWordchars = "abcdfeghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_" +
	"ßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞ"

func (l *lexer) isWord(c rune) bool {
	return strings.ContainsRune(posixWordchars, c) || strings.ContainsRune(l.extra, c)
}

func isBlank(c rune) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// skipLine skips the rest of a comment line.
func (l *lexer) skipLine() {
	for l.pos < len(l.in) && l.in[l.pos] != '\n' {
		l.pos++
	}
	if l.pos < len(l.in) {
		l.pos++
	}
}

var errNoClosingQuote = errors.New("no closing quotation")

// token returns the next token; ok is false at the end.
func (l *lexer) token() (tok string, ok bool, err error) {
	if l.state == 0 && l.pos > 0 {
		return "", false, nil
	}
	if l.state == 0 || l.state == 'a' {
		l.state = ' '
	}
	var b []rune
	quoted := false
	escaped := 'a' // the state an escape returns to
	for {
		eof := l.pos >= len(l.in)
		var c rune
		if !eof {
			c = l.in[l.pos]
			l.pos++
		}
		switch st := l.state; {
		case st == ' ':
			switch {
			case eof:
				l.state = 0
				return string(b), len(b) > 0 || quoted, nil
			case isBlank(c):
				if len(b) > 0 || quoted {
					return string(b), true, nil
				}
			case l.comments && c == '#':
				l.skipLine()
			case c == '\\':
				escaped, l.state = 'a', '\\'
			case l.isWord(c) || l.split && c != '\'' && c != '"':
				b, l.state = append(b, c), 'a'
			case c == '\'' || c == '"':
				l.state = c
			default: // a character of its own: a token alone
				return string(c), true, nil
			}
		case st == '\'' || st == '"':
			quoted = true
			switch {
			case eof:
				return "", false, errNoClosingQuote
			case c == st:
				l.state = 'a'
			case st == '"' && c == '\\':
				escaped, l.state = st, '\\'
			default:
				b = append(b, c)
			}
		case st == '\\':
			if eof {
				return "", false, errors.New("nothing after a final backslash")
			}
			if escaped == '"' && c != '\\' && c != '"' {
				b = append(b, '\\') // in "…", \ escapes only " and \
			}
			b, l.state = append(b, c), escaped
		default: // 'a': in a word
			switch {
			case eof:
				l.state = 0
				return string(b), len(b) > 0 || quoted, nil
			case isBlank(c):
				l.state = ' '
				if len(b) > 0 || quoted {
					return string(b), true, nil
				}
			case l.comments && c == '#':
				l.skipLine()
				l.state = ' '
				if len(b) > 0 || quoted {
					return string(b), true, nil
				}
			case c == '\'' || c == '"':
				l.state = c
			case c == '\\':
				escaped, l.state = 'a', '\\'
			case l.isWord(c) || l.split:
				b = append(b, c)
			default: // ends the word; read again as a token of its own
				l.pos--
				l.state = ' '
				if len(b) > 0 || quoted {
					return string(b), true, nil
				}
			}
		}
	}
}
