package sdnotify

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()

	t.Setenv("NOTIFY_SOCKET", sock)
	ok, err := Notify("READY=1\nSTATUS=up")
	require.NoError(t, err)
	require.True(t, ok)
	buf := make([]byte, 128)
	n, err := conn.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "READY=1\nSTATUS=up", string(buf[:n]))

	t.Setenv("NOTIFY_SOCKET", "")
	ok, err = Notify("READY=1")
	require.NoError(t, err)
	require.False(t, ok)
}
