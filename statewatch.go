package usrsvc

import (
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/inotify"
	"github.com/usrsvc/usrsvc/internal/statedir"
)

// watchState pokes the loop when usrsvc records a manual operation
// (programs/NAME.manual.json), so a manual start or stop is seen at once,
// not at the next resolution pass. Without inotify the pass still catches
// it. It returns a function that stops watching.
func (l *loop) watchState() func() {
	dir, err := l.m.state().Ensure(statedir.ProgramsDir)
	if err != nil {
		return func() {}
	}
	w, err := inotify.New(unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_DELETE, dir)
	if err != nil {
		return func() {}
	}
	l.spawn(func() {
		for {
			evs, err := w.Read()
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					l.m.log.Debug("state directory watch ended: " + err.Error())
				}
				return
			}
			for _, ev := range evs {
				if prog, ok := strings.CutSuffix(ev.Name, statedir.ManualSuffix); ok {
					l.send(pokeMsg{name: prog})
				}
			}
		}
	})
	return func() { w.Close() }
}
