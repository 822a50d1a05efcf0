package usrsvc

import "context"

// Alerter sends alerts about events (SPEC §7). usrsvcd calls Alert off its
// supervising loop, for events that warrant a mail: a program found stopped
// and restarted, a monitor restart, and giving up at maxrestarts.
type Alerter interface {
	Alert(ctx context.Context, ev Event) error
}
