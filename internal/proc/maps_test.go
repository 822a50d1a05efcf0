package proc

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMaps(t *testing.T) {
	in := "00400000-005d4000 r-xp 00000000 fd:01 1234   /usr/local/bin/usrsvcd\n" +
		"005d4000-007d3000 r--p 001d4000 fd:01 1234   /usr/local/bin/usrsvcd\n" +
		"c000000000-c000400000 rw-p 00000000 00:00 0 \n" +
		"7f0000000000-7f0000001000 r-xp 00000000 fd:01 99  /opt/my app/bin (deleted)\n" +
		"7ffe6b8eb000-7ffe6b90c000 rw-p 00000000 00:00 0                          [stack]\n"
	ms, err := parseMaps([]byte(in))
	require.NoError(t, err)
	require.Len(t, ms, 5)
	assert.Equal(t, Mapping{Start: 0x400000, End: 0x5d4000, Perms: "r-xp", Path: "/usr/local/bin/usrsvcd"}, ms[0])
	assert.Equal(t, "r--p", ms[1].Perms)
	assert.Equal(t, "", ms[2].Path, "anonymous")
	assert.Equal(t, uintptr(0xc000400000), ms[2].End)
	assert.Equal(t, "/opt/my app/bin (deleted)", ms[3].Path, "a path with spaces, kept whole")
	assert.Equal(t, "[stack]", ms[4].Path)

	smaps := "00400000-005d4000 r-xp 00000000 fd:01 1234   /usr/local/bin/usrsvcd\n" +
		"Size:               1872 kB\nAnonymous:             0 kB\nVmFlags: rd ex mr mw me\n" +
		"005d4000-007d3000 r--p 001d4000 fd:01 1234   /usr/local/bin/usrsvcd\n" +
		"Size:               2044 kB\nAnonymous:           152 kB\nVmFlags: rd mr mw me\n"
	ms, err = parseMaps([]byte(smaps))
	require.NoError(t, err)
	require.Len(t, ms, 2)
	assert.Equal(t, Mapping{Start: 0x400000, End: 0x5d4000, Perms: "r-xp", Path: "/usr/local/bin/usrsvcd"}, ms[0])
	assert.Equal(t, int64(152), ms[1].AnonKB, "relocated pages of a read-only mapping")

	for _, bad := range []string{"zz-10 r-xp 0 0 0\n", "10-5 r-xp 0 0 0\n", "10-20 r-xp\n", "10-20 r--p 0 0 0\nAnonymous: x kB\n"} {
		_, err := parseMaps([]byte(bad))
		assert.True(t, errors.Is(err, ErrFormat), "%q: %v", bad, err)
	}
}

func TestMappingsOfSelf(t *testing.T) {
	ms, err := Default().Mappings(0)
	require.NoError(t, err)
	var exec int
	for _, m := range ms {
		if m.Perms == "r-xp" {
			exec++
		}
		assert.Less(t, m.Start, m.End)
	}
	assert.Positive(t, exec, "some code is mapped")
}
