package usrsvc

import "context"

// Alerter sends alerts about events. Run calls Alert off its supervising
// loop, in a goroutine of its own, for the events that warrant an alert: a
// program found stopped and restarted ([EventRestarting], not the
// autostart at Run's start or at a reload), a monitor restart
// ([EventMonitorFailed]), a program found unhealthy by its health checks
// ([EventHealthFailed]) and giving up at maxrestarts ([EventGaveUp]).
//
// ctx is derived from Run's context and bounded by a timeout (30 s): Alert
// must return when it is done. Run waits for the alerts it sent before it
// returns. Alert may be called concurrently. An error is logged, never
// retried, and never stops the loop. Package
// github.com/usrsvc/usrsvc/sendmail is the alerter usrsvcd uses.
type Alerter interface {
	Alert(ctx context.Context, ev Event) error
}

// alert hands ev to the alerter off the loop, bounded by alertTimeout.
func (l *loop) alert(ev Event) {
	a := l.m.opts.Alerter
	if a == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = l.m.now()
	}
	l.spawn(func() {
		ctx, cancel := context.WithTimeout(l.ctx, alertTimeout)
		defer cancel()
		if err := a.Alert(ctx, ev); err != nil {
			l.m.log.Error("alert failed: "+err.Error(), "program", ev.Program, "event", "alert-failed")
		}
	})
}
