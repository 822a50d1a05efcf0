// Package xmlrpc is the XML-RPC codec of usrsvcweb's /RPC2: it decodes
// method calls and encodes responses and faults as supervisorctl and
// Python's xmlrpc.client send and expect them.
//
// Values decode to Go as: int, i4, i8, i1, i2 → int64; boolean → bool;
// double → float64; string (or a bare <value>) → string; base64 → []byte;
// dateTime.iso8601 → time.Time; nil (and ex:nil) → nil; array → []any;
// struct → map[string]any. Encoding takes those and int, []string,
// []map[string]any.
//
// The decoder is strict: a DTD or any other directive, an entity other
// than XML's five, an unknown element, nesting deeper than 64 values or
// malformed XML is an error, never a panic (it is fuzzed). Strings are
// encoded as valid XML 1.0: invalid UTF-8 and the control characters XML
// cannot carry become U+FFFD.
package xmlrpc

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Fault is an XML-RPC fault: the error a method answers.
type Fault struct {
	Code   int
	String string
}

// Error returns the fault's string.
func (f *Fault) Error() string { return fmt.Sprintf("fault %d: %s", f.Code, f.String) }

// Call is a decoded methodCall.
type Call struct {
	Method string
	Params []any
}

// MaxDepth bounds the nesting of arrays and structs.
const MaxDepth = 64

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed XML-RPC")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// decoder reads tokens, skipping whitespace, comments and the XML
// declaration, and refusing directives (DTDs).
type decoder struct {
	d     *xml.Decoder
	depth int
}

func newDecoder(r io.Reader) *decoder {
	d := xml.NewDecoder(r)
	d.Strict = true
	d.Entity = nil // only &lt; &gt; &amp; &apos; &quot; and character references
	d.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "utf8", "us-ascii", "ascii":
			return input, nil
		}
		return nil, malformed("encoding %q is not supported: send UTF-8", charset)
	}
	return &decoder{d: d}
}

// token returns the next start element, end element or non-blank text.
func (dc *decoder) token() (xml.Token, error) {
	for {
		t, err := dc.d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, malformed("unexpected end of document")
			}
			if errors.Is(err, ErrMalformed) {
				return nil, err
			}
			return nil, malformed("%v", err)
		}
		switch t := t.(type) {
		case xml.Directive:
			return nil, malformed("DTDs and other directives are not accepted")
		case xml.ProcInst:
			if t.Target != "xml" {
				return nil, malformed("processing instruction <?%s?> is not accepted", t.Target)
			}
		case xml.Comment:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return t.Copy(), nil
			}
		default:
			return t, nil
		}
	}
}

// start expects the start element name.
func (dc *decoder) start(name string) error {
	t, err := dc.token()
	if err != nil {
		return err
	}
	if s, ok := t.(xml.StartElement); !ok || s.Name.Local != name {
		return malformed("expected <%s>, found %s", name, describe(t))
	}
	return nil
}

// end expects the end of element name.
func (dc *decoder) end(name string) error {
	t, err := dc.token()
	if err != nil {
		return err
	}
	if e, ok := t.(xml.EndElement); !ok || e.Name.Local != name {
		return malformed("expected </%s>, found %s", name, describe(t))
	}
	return nil
}

// text reads the character data of an element whose start was read, up to
// and including its end.
func (dc *decoder) text(name string) (string, error) {
	var b strings.Builder
	for {
		t, err := dc.d.Token()
		if err != nil {
			return "", malformed("in <%s>: %v", name, err)
		}
		switch t := t.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.Comment:
		case xml.EndElement:
			if t.Name.Local != name {
				return "", malformed("expected </%s>, found </%s>", name, t.Name.Local)
			}
			return b.String(), nil
		case xml.Directive:
			return "", malformed("DTDs and other directives are not accepted")
		default:
			return "", malformed("unexpected %s in <%s>", describe(t), name)
		}
	}
}

func describe(t xml.Token) string {
	switch t := t.(type) {
	case xml.StartElement:
		return "<" + t.Name.Local + ">"
	case xml.EndElement:
		return "</" + t.Name.Local + ">"
	case xml.CharData:
		s := string(t)
		if len(s) > 20 {
			s = s[:20] + "…"
		}
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%T", t)
}

// DecodeCall reads a methodCall.
func DecodeCall(r io.Reader) (*Call, error) {
	dc := newDecoder(r)
	if err := dc.start("methodCall"); err != nil {
		return nil, err
	}
	if err := dc.start("methodName"); err != nil {
		return nil, err
	}
	name, err := dc.text("methodName")
	if err != nil {
		return nil, err
	}
	c := &Call{Method: strings.TrimSpace(name)}
	if c.Method == "" {
		return nil, malformed("empty methodName")
	}
	t, err := dc.token()
	if err != nil {
		return nil, err
	}
	if s, ok := t.(xml.StartElement); ok && s.Name.Local == "params" {
		for {
			t, err := dc.token()
			if err != nil {
				return nil, err
			}
			if e, ok := t.(xml.EndElement); ok && e.Name.Local == "params" {
				break
			}
			if s, ok := t.(xml.StartElement); !ok || s.Name.Local != "param" {
				return nil, malformed("expected <param>, found %s", describe(t))
			}
			v, err := dc.value()
			if err != nil {
				return nil, err
			}
			if err := dc.end("param"); err != nil {
				return nil, err
			}
			c.Params = append(c.Params, v)
		}
		if t, err = dc.token(); err != nil {
			return nil, err
		}
	}
	if e, ok := t.(xml.EndElement); !ok || e.Name.Local != "methodCall" {
		return nil, malformed("expected </methodCall>, found %s", describe(t))
	}
	if err := dc.eof(); err != nil {
		return nil, err
	}
	return c, nil
}

// eof checks that nothing but blanks and comments follows the root.
func (dc *decoder) eof() error {
	for {
		t, err := dc.d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return malformed("%v", err)
		}
		switch t := t.(type) {
		case xml.Comment:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return malformed("text after the document")
			}
		default:
			return malformed("%s after the document", describe(t))
		}
	}
}

// value reads <value>…</value>.
func (dc *decoder) value() (any, error) {
	if err := dc.start("value"); err != nil {
		return nil, err
	}
	return dc.body()
}

// body reads a value whose <value> start was read, up to its end.
func (dc *decoder) body() (any, error) {
	dc.depth++
	defer func() { dc.depth-- }()
	if dc.depth > MaxDepth {
		return nil, malformed("values nested deeper than %d", MaxDepth)
	}
	// <value>text</value> is a string; so is <value></value>.
	var text strings.Builder
	for {
		t, err := dc.d.Token()
		if err != nil {
			return nil, malformed("in <value>: %v", err)
		}
		switch t := t.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.Comment:
		case xml.EndElement:
			return text.String(), nil // its name is checked by encoding/xml
		case xml.StartElement:
			if strings.TrimSpace(text.String()) != "" {
				return nil, malformed("text and <%s> mixed in <value>", t.Name.Local)
			}
			v, err := dc.typed(t.Name.Local)
			if err != nil {
				return nil, err
			}
			if err := dc.end("value"); err != nil {
				return nil, err
			}
			return v, nil
		case xml.Directive:
			return nil, malformed("DTDs and other directives are not accepted")
		default:
			return nil, malformed("unexpected %s in <value>", describe(t))
		}
	}
}

// typed reads the typed element whose start (name) was read.
func (dc *decoder) typed(name string) (any, error) {
	switch name {
	case "array":
		return dc.array()
	case "struct":
		return dc.structure()
	case "nil":
		if err := dc.end("nil"); err != nil {
			return nil, err
		}
		return nil, nil
	}
	s, err := dc.text(name)
	if err != nil {
		return nil, err
	}
	switch name {
	case "string":
		return s, nil
	case "int", "i4", "i8", "i1", "i2":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, malformed("<%s>%s</%s> is not an integer", name, s, name)
		}
		return n, nil
	case "boolean":
		switch strings.TrimSpace(s) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, malformed("<boolean>%s</boolean> is neither 0 nor 1", s)
	case "double":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, malformed("<double>%s</double> is not a number", s)
		}
		return f, nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, malformed("<base64>: %v", err)
		}
		return b, nil
	case "dateTime.iso8601":
		for _, layout := range []string{"20060102T15:04:05", "2006-01-02T15:04:05", "20060102T150405"} {
			if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
				return t, nil
			}
		}
		return nil, malformed("<dateTime.iso8601>%s</dateTime.iso8601> is not a date", s)
	}
	return nil, malformed("unknown type <%s>", name)
}

func (dc *decoder) array() ([]any, error) {
	if err := dc.start("data"); err != nil {
		return nil, err
	}
	out := []any{}
	for {
		t, err := dc.token()
		if err != nil {
			return nil, err
		}
		if e, ok := t.(xml.EndElement); ok && e.Name.Local == "data" {
			break
		}
		if s, ok := t.(xml.StartElement); !ok || s.Name.Local != "value" {
			return nil, malformed("expected <value> in <data>, found %s", describe(t))
		}
		v, err := dc.body()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, dc.end("array")
}

func (dc *decoder) structure() (map[string]any, error) {
	out := map[string]any{}
	for {
		t, err := dc.token()
		if err != nil {
			return nil, err
		}
		if e, ok := t.(xml.EndElement); ok && e.Name.Local == "struct" {
			return out, nil
		}
		if s, ok := t.(xml.StartElement); !ok || s.Name.Local != "member" {
			return nil, malformed("expected <member> in <struct>, found %s", describe(t))
		}
		if err := dc.start("name"); err != nil {
			return nil, err
		}
		name, err := dc.text("name")
		if err != nil {
			return nil, err
		}
		v, err := dc.value()
		if err != nil {
			return nil, err
		}
		if err := dc.end("member"); err != nil {
			return nil, err
		}
		out[name] = v
	}
}

// DecodeResponse reads a methodResponse: its value, or its fault as a
// *Fault error (for clients and tests).
func DecodeResponse(r io.Reader) (any, error) {
	dc := newDecoder(r)
	if err := dc.start("methodResponse"); err != nil {
		return nil, err
	}
	t, err := dc.token()
	if err != nil {
		return nil, err
	}
	s, ok := t.(xml.StartElement)
	if !ok {
		return nil, malformed("expected <params> or <fault>, found %s", describe(t))
	}
	var v any
	switch s.Name.Local {
	case "params":
		if err := dc.start("param"); err != nil {
			return nil, err
		}
		if v, err = dc.value(); err != nil {
			return nil, err
		}
		if err := dc.end("param"); err != nil {
			return nil, err
		}
		if err := dc.end("params"); err != nil {
			return nil, err
		}
	case "fault":
		fv, err := dc.value()
		if err != nil {
			return nil, err
		}
		if err := dc.end("fault"); err != nil {
			return nil, err
		}
		m, _ := fv.(map[string]any)
		code, ok1 := m["faultCode"].(int64)
		str, ok2 := m["faultString"].(string)
		if !ok1 || !ok2 {
			return nil, malformed("a fault must be a struct of faultCode (int) and faultString (string)")
		}
		err = &Fault{Code: int(code), String: str}
		if e := dc.end("methodResponse"); e != nil {
			return nil, e
		}
		return nil, err
	default:
		return nil, malformed("expected <params> or <fault>, found <%s>", s.Name.Local)
	}
	if err := dc.end("methodResponse"); err != nil {
		return nil, err
	}
	return v, dc.eof()
}
