// Package sdnotify speaks systemd's notify protocol (sd_notify(3)): a
// datagram of newline-separated assignments sent to $NOTIFY_SOCKET. It is
// the 15 lines go-systemd's daemon package would bring, without its godbus
// requirement in go.sum.
package sdnotify

import (
	"net"
	"os"
)

// Notify sends state (e.g. "READY=1") to the socket named by NOTIFY_SOCKET.
// It returns false, nil when NOTIFY_SOCKET is unset (not under systemd).
func Notify(state string) (bool, error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, err
	}
	return true, nil
}
