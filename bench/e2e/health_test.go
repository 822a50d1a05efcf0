package main

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// get fetches url with client and returns the body.
func get(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d", url, resp.StatusCode)
	}
	return string(b)
}

// TestCheckCounter: the -httpserve endpoint counts every request but
// /count, and the connections that carried them: one for a client that
// keeps its connection alive, one a request for one that does not.
func TestCheckCounter(t *testing.T) {
	var c checkCounter
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := c.server()
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	alive := &http.Client{Transport: &http.Transport{}}
	for i := 0; i < 3; i++ {
		if got := get(t, alive, base+"/health"); got != "ok\n" {
			t.Fatalf("body %q", got)
		}
	}
	closing := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 2; i++ {
		get(t, closing, base+"/health")
	}
	if got := strings.TrimSpace(get(t, closing, base+"/count")); got != "HTTPCOUNT requests=5 conns=3" {
		t.Fatalf("count: %q", got)
	}
	if got := field(get(t, closing, base+"/count"), "requests"); got != "5" {
		t.Fatalf("/count was counted: requests=%s", got)
	}
}

// field is bench/lib.sh's: the value of NAME=... in line.
func field(line, name string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v
		}
	}
	return ""
}

func TestFreePort(t *testing.T) {
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d is not free: %v", p, err)
	}
	ln.Close()
}
