package xmlrpc

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// EncodeResponse writes a methodResponse holding v.
func EncodeResponse(w io.Writer, v any) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse><params><param>")
	if err := encodeValue(bw, v, 0); err != nil {
		return err
	}
	bw.WriteString("</param></params></methodResponse>\n")
	return bw.Flush()
}

// EncodeFault writes a methodResponse holding the fault f.
func EncodeFault(w io.Writer, f *Fault) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse><fault>")
	if err := encodeValue(bw, map[string]any{"faultCode": f.Code, "faultString": f.String}, 0); err != nil {
		return err
	}
	bw.WriteString("</fault></methodResponse>\n")
	return bw.Flush()
}

// EncodeCall writes a methodCall (for clients and tests).
func EncodeCall(w io.Writer, method string, params ...any) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("<?xml version=\"1.0\"?>\n<methodCall><methodName>")
	writeText(bw, method)
	bw.WriteString("</methodName><params>")
	for _, p := range params {
		bw.WriteString("<param>")
		if err := encodeValue(bw, p, 0); err != nil {
			return err
		}
		bw.WriteString("</param>")
	}
	bw.WriteString("</params></methodCall>\n")
	return bw.Flush()
}

func encodeValue(w *bufio.Writer, v any, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("xmlrpc: values nested deeper than %d", MaxDepth)
	}
	w.WriteString("<value>")
	switch v := v.(type) {
	case nil:
		w.WriteString("<nil/>")
	case bool:
		if v {
			w.WriteString("<boolean>1</boolean>")
		} else {
			w.WriteString("<boolean>0</boolean>")
		}
	case int:
		writeInt(w, int64(v))
	case int64:
		writeInt(w, v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("xmlrpc: %v cannot be sent", v)
		}
		w.WriteString("<double>" + strconv.FormatFloat(v, 'f', -1, 64) + "</double>")
	case string:
		w.WriteString("<string>")
		writeText(w, v)
		w.WriteString("</string>")
	case []byte:
		w.WriteString("<base64>" + base64.StdEncoding.EncodeToString(v) + "</base64>")
	case time.Time:
		w.WriteString("<dateTime.iso8601>" + v.Format("20060102T15:04:05") + "</dateTime.iso8601>")
	case []any:
		w.WriteString("<array><data>")
		for _, e := range v {
			if err := encodeValue(w, e, depth+1); err != nil {
				return err
			}
		}
		w.WriteString("</data></array>")
	case []string:
		w.WriteString("<array><data>")
		for _, e := range v {
			encodeValue(w, e, depth+1)
		}
		w.WriteString("</data></array>")
	case []map[string]any:
		w.WriteString("<array><data>")
		for _, e := range v {
			if err := encodeValue(w, e, depth+1); err != nil {
				return err
			}
		}
		w.WriteString("</data></array>")
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		w.WriteString("<struct>")
		for _, k := range keys {
			w.WriteString("<member><name>")
			writeText(w, k)
			w.WriteString("</name>")
			if err := encodeValue(w, v[k], depth+1); err != nil {
				return err
			}
			w.WriteString("</member>")
		}
		w.WriteString("</struct>")
	default:
		return fmt.Errorf("xmlrpc: cannot encode %T", v)
	}
	w.WriteString("</value>")
	return nil
}

// writeInt writes <int> within 32 bits (what every client reads), <i8>
// beyond.
func writeInt(w *bufio.Writer, n int64) {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		w.WriteString("<int>" + strconv.FormatInt(n, 10) + "</int>")
		return
	}
	w.WriteString("<i8>" + strconv.FormatInt(n, 10) + "</i8>")
}

// writeText escapes s for XML 1.0: &, <, >, and \r (which a parser would
// turn into \n) as references; invalid UTF-8 and the characters XML 1.0
// cannot carry at all (control characters but tab and newline, U+FFFE,
// U+FFFF) as U+FFFD.
func writeText(w *bufio.Writer, s string) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '&':
			w.WriteString("&amp;")
		case r == '<':
			w.WriteString("&lt;")
		case r == '>':
			w.WriteString("&gt;")
		case r == '\r':
			w.WriteString("&#13;")
		case r == utf8.RuneError && size == 1,
			r < 0x20 && r != '\t' && r != '\n',
			r == 0xFFFE, r == 0xFFFF:
			w.WriteRune(utf8.RuneError)
		default:
			w.WriteRune(r)
		}
	}
}
