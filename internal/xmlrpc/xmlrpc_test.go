package xmlrpc

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodePythonCalls(t *testing.T) {
	t.Parallel()
	read := func(name string) *Call {
		data, err := os.ReadFile(filepath.Join("testdata", "calls", name))
		require.NoError(t, err)
		c, err := DecodeCall(bytes.NewReader(data))
		require.NoError(t, err, name)
		return c
	}
	assert.Equal(t, &Call{Method: "supervisor.getAPIVersion"}, read("getAPIVersion.xml"))
	assert.Equal(t, &Call{Method: "system.listMethods"}, read("noparams.xml"))
	assert.Equal(t, &Call{Method: "supervisor.readProcessStdoutLog", Params: []any{"web", int64(-1600), int64(0)}}, read("readLog.xml"))
	assert.Equal(t, &Call{Method: "supervisor.startProcess", Params: []any{"web", true}}, read("startProcess.xml"))
	assert.Equal(t, &Call{Method: "x", Params: []any{int64(9007199254740993), "bare string", ""}}, read("i8.xml"))
	c := read("types.xml")
	assert.Equal(t, []any{map[string]any{
		"a": []any{int64(1), "two", false, nil, 2.5},
		"b": map[string]any{"c": []byte("bytes")},
		"é": "ünï <&>",
	}}, c.Params)
	c = read("multicall.xml")
	require.Len(t, c.Params, 1)
	calls := c.Params[0].([]any)
	require.Len(t, calls, 3)
	assert.Equal(t, map[string]any{"methodName": "supervisor.getPID", "params": []any{}}, calls[0])
	assert.Equal(t, []any{nil, 1.5, []byte{0, 0xff}, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}, calls[2].(map[string]any)["params"])
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	v := map[string]any{
		"int": int64(-7), "big": int64(1) << 40, "bool": true, "f": 0.25, "s": "a\tb\nc\r&<>\"'é",
		"bytes": []byte{1, 2, 3}, "nil": nil, "list": []any{int64(1), []any{}, map[string]any{}},
		"time": time.Date(2030, 12, 31, 23, 59, 58, 0, time.UTC),
	}
	var b bytes.Buffer
	require.NoError(t, EncodeResponse(&b, v))
	got, err := DecodeResponse(&b)
	require.NoError(t, err)
	assert.Equal(t, v, got)

	b.Reset()
	require.NoError(t, EncodeFault(&b, &Fault{Code: 10, String: "BAD_NAME: x"}))
	_, err = DecodeResponse(&b)
	assert.Equal(t, &Fault{Code: 10, String: "BAD_NAME: x"}, err)

	b.Reset()
	require.NoError(t, EncodeCall(&b, "m", "x", 3, []string{"a"}, []map[string]any{{"k": 1}}))
	c, err := DecodeCall(&b)
	require.NoError(t, err)
	assert.Equal(t, &Call{Method: "m", Params: []any{"x", int64(3), []any{"a"}, []any{map[string]any{"k": int64(1)}}}}, c)
}

func TestEncodeInvalidCharacters(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, EncodeResponse(&b, "a\x00b\x1bc\xffd\ufffe"))
	got, err := DecodeResponse(&b)
	require.NoError(t, err)
	assert.Equal(t, "a\ufffdb\ufffdc\ufffdd\ufffd", got)
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	call := func(body string) string {
		return `<?xml version="1.0"?><methodCall><methodName>m</methodName><params><param>` + body + `</param></params></methodCall>`
	}
	for _, bad := range []string{
		``,
		`not xml`,
		`<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><methodCall><methodName>&lol2;</methodName></methodCall>`,
		`<!DOCTYPE x SYSTEM "file:///etc/passwd"><methodCall><methodName>m</methodName></methodCall>`,
		call(`<value><string>&xxe;</string></value>`),
		call(`<value><int>12a</int></value>`),
		call(`<value><boolean>2</boolean></value>`),
		call(`<value><double>NaN</double></value>`),
		call(`<value><base64>!!!</base64></value>`),
		call(`<value><dateTime.iso8601>yesterday</dateTime.iso8601></value>`),
		call(`<value><unknown>1</unknown></value>`),
		call(`<value>text<string>x</string></value>`),
		call(`<value><struct><member><value><int>1</int></value></member></struct></value>`),
		call(`<value><array><value><int>1</int></value></array></value>`),
		call(`<value><int>1</int>`),
		call(strings.Repeat(`<value><array><data>`, MaxDepth+1) + strings.Repeat(`</data></array></value>`, MaxDepth+1)),
		`<methodCall><methodName></methodName></methodCall>`,
		`<methodCall><methodName>m</methodName></methodCall><methodCall/>`,
		`<?xml version="1.0" encoding="ISO-8859-1"?><methodCall><methodName>m</methodName></methodCall>`,
		`<?php x?><methodCall><methodName>m</methodName></methodCall>`,
	} {
		c, err := DecodeCall(strings.NewReader(bad))
		assert.ErrorIs(t, err, ErrMalformed, "%q decoded to %#v", bad, c)
	}
	// Nesting up to the bound is fine.
	ok := call(strings.Repeat(`<value><array><data>`, MaxDepth) + strings.Repeat(`</data></array></value>`, MaxDepth))
	_, err := DecodeCall(strings.NewReader(ok))
	assert.NoError(t, err)
}

// FuzzDecodeCall: any input decodes or is refused with ErrMalformed, never
// a panic; what decodes encodes and decodes back to the same call.
func FuzzDecodeCall(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "calls", "*.xml"))
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><methodCall><methodName>&a;</methodName></methodCall>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCall(bytes.NewReader(data))
		if err != nil {
			if !strings.Contains(err.Error(), ErrMalformed.Error()) {
				t.Fatalf("error not wrapping ErrMalformed: %v", err)
			}
			return
		}
		var b bytes.Buffer
		if err := EncodeCall(&b, c.Method, c.Params...); err != nil {
			t.Fatalf("decoded call does not encode: %v", err)
		}
		c2, err := DecodeCall(&b)
		if err != nil {
			t.Fatalf("re-encoded call does not decode: %v\n%s", err, b.String())
		}
		if !reflect.DeepEqual(normalize(c), normalize(c2)) {
			t.Fatalf("round trip changed the call:\n%#v\n%#v", c, c2)
		}
	})
}

// normalize maps what encoding legitimately changes: strings are made
// valid XML text, and times lose their zone.
func normalize(c *Call) *Call {
	var f func(v any) any
	f = func(v any) any {
		switch v := v.(type) {
		case string:
			var b bytes.Buffer
			EncodeResponse(&b, v)
			s, _ := DecodeResponse(&b)
			return s
		case []any:
			out := make([]any, len(v))
			for i, e := range v {
				out[i] = f(e)
			}
			return out
		case map[string]any:
			out := map[string]any{}
			for k, e := range v {
				out[f(k).(string)] = f(e)
			}
			return out
		case time.Time:
			return v.Format("20060102T15:04:05")
		}
		return v
	}
	out := &Call{Method: f(c.Method).(string)}
	for _, p := range c.Params {
		out.Params = append(out.Params, f(p))
	}
	return out
}
