// Package inotify reports changes to the files of a few directories
// (inotify(7)) through Go's netpoller: a goroutine blocked in Read costs
// nothing until something changes, and Close wakes it.
package inotify

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Changes is the mask of the events that mean "a file's content was
// replaced or written": a close after writing, a rename into the
// directory (an atomic replace), a creation and a removal.
const Changes = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_CREATE | unix.IN_DELETE

// Event is one change: the directory watched and the file's name in it.
type Event struct {
	Dir  string
	Name string
	Mask uint32
}

// Watcher watches directories. Create it with [New]; Close it when done.
type Watcher struct {
	f    *os.File
	dirs map[int]string // watch descriptor → directory
	buf  []byte
}

// New watches dirs for the events of mask (e.g. [Changes]). A directory
// that cannot be watched is an error; nothing is left open then.
func New(mask uint32, dirs ...string) (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, &os.SyscallError{Syscall: "inotify_init1", Err: err}
	}
	w := &Watcher{dirs: map[int]string{}, buf: make([]byte, 16<<10)}
	for _, d := range dirs {
		wd, err := unix.InotifyAddWatch(fd, d, mask)
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("watching %s: %w", d, &os.SyscallError{Syscall: "inotify_add_watch", Err: err})
		}
		w.dirs[wd] = d
	}
	// fd is non-blocking: os.NewFile registers it with the netpoller.
	w.f = os.NewFile(uintptr(fd), "inotify")
	return w, nil
}

// Read blocks until something changes and returns the changes; after
// Close it returns an error wrapping [os.ErrClosed]. Calls must not
// overlap.
func (w *Watcher) Read() ([]Event, error) {
	n, err := w.f.Read(w.buf)
	if err != nil {
		return nil, err
	}
	return w.parse(w.buf[:n]), nil
}

// parse decodes the inotify events in buf.
func (w *Watcher) parse(buf []byte) []Event {
	var evs []Event
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		end := off + unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(buf) {
			break
		}
		name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:end]), "\x00")
		evs = append(evs, Event{Dir: w.dirs[int(ev.Wd)], Name: name, Mask: ev.Mask})
		off = end
	}
	return evs
}

// Close stops watching and wakes a blocked Read.
func (w *Watcher) Close() error {
	err := w.f.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
