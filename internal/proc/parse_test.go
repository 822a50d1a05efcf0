package proc

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statLine builds a 52-field stat line with the given fields 3.. replaced.
func statLine(pid, comm string, set map[int]string) string {
	f := strings.Fields("S 1 100 100 0 -1 4194560 100 0 0 0 7 8 0 0 20 0 1 0 4242 1234567 99 " +
		"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0")
	for n, v := range set {
		f[n-3] = v
	}
	return pid + " (" + comm + ") " + strings.Join(f, " ") + "\n"
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Process // PID, PPID, State, Comm, UTime, STime, StartTicks, RSSPages, ExitCode
		err  bool
	}{
		{name: "plain", in: statLine("10", "sleep", nil),
			want: Process{PID: 10, PPID: 1, PGID: 100, SID: 100, State: 'S', Comm: "sleep", UTime: 7, STime: 8, Threads: 1, StartTicks: 4242, RSSPages: 99}},
		{name: "comm with ) ( and spaces", in: statLine("11", "a) (b c) R 5 (", nil),
			want: Process{PID: 11, PPID: 1, PGID: 100, SID: 100, State: 'S', Comm: "a) (b c) R 5 (", UTime: 7, STime: 8, Threads: 1, StartTicks: 4242, RSSPages: 99}},
		{name: "empty comm", in: statLine("12", "", nil),
			want: Process{PID: 12, PPID: 1, PGID: 100, SID: 100, State: 'S', Comm: "", UTime: 7, STime: 8, Threads: 1, StartTicks: 4242, RSSPages: 99}},
		{name: "zombie with exit status", in: statLine("13", "x", map[int]string{3: "Z", 4: "7", 52: "768"}),
			want: Process{PID: 13, PPID: 7, PGID: 100, SID: 100, State: 'Z', Comm: "x", UTime: 7, STime: 8, Threads: 1, StartTicks: 4242, RSSPages: 99, ExitCode: 768}},
		{name: "no trailing newline", in: strings.TrimSuffix(statLine("14", "x", nil), "\n"),
			want: Process{PID: 14, PPID: 1, PGID: 100, SID: 100, State: 'S', Comm: "x", UTime: 7, STime: 8, Threads: 1, StartTicks: 4242, RSSPages: 99}},
		{name: "old kernel, 44 fields", in: "15 (x) S 1 100 100 0 -1 4194560 100 0 0 0 7 8 0 0 20 0 1 0 4242 1234567 99 " +
			"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0\n",
			want: Process{PID: 15, PPID: 1, PGID: 100, SID: 100, State: 'S', Comm: "x", UTime: 7, STime: 8, Threads: 1, StartTicks: 4242, RSSPages: 99}},
		{name: "exactly up to rss", in: "16 (x) S 1 100 100 0 -1 4194560 100 0 0 0 7 8 0 0 20 0 1 0 4242 1234567 99",
			want: Process{PID: 16, PPID: 1, PGID: 100, SID: 100, State: 'S', Comm: "x", UTime: 7, STime: 8, Threads: 1, StartTicks: 4242, RSSPages: 99}},
		{name: "negative rss field parses", in: statLine("17", "x", map[int]string{24: "-1"}),
			want: Process{PID: 17, PPID: 1, PGID: 100, SID: 100, State: 'S', Comm: "x", UTime: 7, STime: 8, Threads: 1, StartTicks: 4242, RSSPages: -1}},
		{name: "empty", in: "", err: true},
		{name: "only pid", in: "17", err: true},
		{name: "no closing paren", in: "18 (sleep S 1 2 3", err: true},
		{name: "no pid", in: "(sleep) S 1 2 3", err: true},
		{name: "bad pid", in: "x1 (sleep) S 1 2 3", err: true},
		{name: "short", in: "19 (sleep) S 1 2 3\n", err: true},
		{name: "missing start time", in: "20 (x) S 1 15 15 0 -1 4194560 100 0 0 0 7 8 0 0 20 0 1 0", err: true},
		{name: "bad ppid", in: statLine("21", "x", map[int]string{4: "one"}), err: true},
		{name: "bad start time", in: statLine("22", "x", map[int]string{22: "12x"}), err: true},
		{name: "overflow", in: statLine("23", "x", map[int]string{22: "99999999999999999999999"}), err: true},
		{name: "long state", in: statLine("24", "x", map[int]string{3: "SS"}), err: true},
		{name: "binary garbage", in: "\x00\xff(\x00)\xff", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Process
			err := parseStat([]byte(tt.in), &p)
			if tt.err {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrFormat), "error %v wraps ErrFormat", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, p)
		})
	}
}

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		args  []string
		title string
	}{
		{name: "kernel thread", in: "", args: nil, title: ""},
		{name: "only NULs", in: "\x00\x00", args: nil, title: ""},
		{name: "one arg", in: "sleep\x00", args: []string{"sleep"}, title: "sleep"},
		{name: "no trailing NUL", in: "sleep", args: []string{"sleep"}, title: "sleep"},
		{name: "args", in: "python3\x00app.py\x00--x\x00a b\x00", args: []string{"python3", "app.py", "--x", "a b"}, title: "python3 app.py --x a b"},
		{name: "trailing NULs", in: "a\x00b\x00\x00\x00", args: []string{"a", "b"}, title: "a b"},
		{name: "empty arg in the middle", in: "a\x00\x00b\x00", args: []string{"a", "", "b"}, title: "a  b"},
		{name: "setproctitle padding", in: "nginx: master process   \x00\x00\x00", args: []string{"nginx: master process   "}, title: "nginx: master process"},
		{name: "leading empty arg", in: "\x00x\x00", args: []string{"", "x"}, title: " x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Process
			parseCmdline([]byte(tt.in), &p)
			assert.Equal(t, tt.args, p.Args)
			assert.Equal(t, tt.title, p.Title)
			if len(tt.args) > 0 {
				assert.Equal(t, tt.title, Title(p.Args), "Title(Args) agrees")
			}
		})
	}
}

func TestParseSmaps(t *testing.T) {
	m, err := parseSmaps([]byte("x [rollup]\nRss:  100 kB\nPss: 5 kB\nPrivate_Clean: 3 kB\nPrivate_Dirty: 4 kB\n" +
		"Rss: 1 kB\nPrivate_Dirty: 1 kB"))
	require.NoError(t, err)
	assert.Equal(t, Memory{RSSKB: 101, PrivateKB: 8}, m)

	m, err = parseSmaps(nil)
	require.NoError(t, err)
	assert.Equal(t, Memory{}, m, "a zombie's empty smaps_rollup")

	for _, bad := range []string{"Rss: 12\n", "Rss: x kB\n", "Private_Dirty: -3 kB\n", "Rss:\n"} {
		_, err := parseSmaps([]byte(bad))
		assert.ErrorIs(t, err, ErrFormat, "%q", bad)
	}
}

func TestParseStatus(t *testing.T) {
	st, err := parseStatus([]byte("Name:\tx\nUid:\t1000\t0\t0\t0\nSigBlk:\t0000000000010000\nSigIgn:\t0000000000004006\n"))
	require.NoError(t, err)
	assert.Equal(t, 1000, st.realUID)
	assert.True(t, Has(st.masks.Ignored, 2))
	assert.True(t, Has(st.masks.Ignored, 3))
	assert.True(t, Has(st.masks.Ignored, 15))
	assert.False(t, Has(st.masks.Ignored, 9))
	assert.True(t, Has(st.masks.Blocked, 17))
	assert.False(t, Has(0, 0))

	st, err = parseStatus([]byte("Name:\tx\n"))
	require.NoError(t, err)
	assert.Equal(t, -1, st.realUID)

	for _, bad := range []string{"Uid:\n", "Uid:\tx\t0\n", "SigIgn:\tzz\n"} {
		_, err := parseStatus([]byte(bad))
		assert.ErrorIs(t, err, ErrFormat, "%q", bad)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(statLine("1", "a) (b", nil)))
	f.Add([]byte("a\x00b\x00"))
	f.Add([]byte("Rss: 1 kB\nUid: 1 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Process
		_ = parseStat(b, &p)
		parseCmdline(b, &p)
		_, _ = parseSmaps(b)
		_, _ = parseStatus(b)
	})
}
