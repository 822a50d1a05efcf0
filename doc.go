// Package usrsvc manages the long-running programs of one Unix account
// without being their parent.
//
// Every program is launched fully detached: a short-lived launcher starts it
// in a new session and exits, so its parent is init (or the session's
// subreaper), never the caller. Programs are found again by their pidfile,
// then by a regexp over the process titles of the account's own processes,
// and are identified by pid plus start time. So the supervising daemon can
// be killed, upgraded or restarted without any program stopping, and a new
// daemon adopts what runs.
package usrsvc

import _ "embed"

// README is the full documentation (README.md), printed by usrsvc --readme.
//
//go:embed README.md
var README string
