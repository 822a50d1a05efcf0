package usrsvc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

const manualSuffix = ".manual.json"

// watchState pokes the loop when usrsvc records a manual operation
// (programs/NAME.manual.json), so a manual start or stop is seen at once,
// not at the next resolution pass. Without inotify the pass still catches
// it. It returns a function that stops watching.
func (l *loop) watchState() func() {
	dir, err := l.m.state().ensure("programs")
	if err != nil {
		return func() {}
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return func() {}
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_DELETE); err != nil {
		unix.Close(fd)
		return func() {}
	}
	f := os.NewFile(uintptr(fd), "inotify:"+dir)
	l.spawn(func() {
		buf := make([]byte, 16<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					l.m.log.Debug("state directory watch ended: " + err.Error())
				}
				return
			}
			for _, name := range inotifyNames(buf[:n]) {
				if prog, ok := strings.CutSuffix(filepath.Base(name), manualSuffix); ok {
					l.send(pokeMsg{name: prog})
				}
			}
		}
	})
	return func() { f.Close() }
}

// inotifyNames returns the file names of the inotify events in buf.
func inotifyNames(buf []byte) []string {
	var names []string
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		end := off + unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(buf) {
			break
		}
		name := string(buf[off+unix.SizeofInotifyEvent : end])
		names = append(names, strings.TrimRight(name, "\x00"))
		off = end
	}
	return names
}
