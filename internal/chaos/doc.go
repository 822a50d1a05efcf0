// Package chaos holds usrsvc's fault-injection suite, in its tests only: the
// real usrsvc and usrsvcd binaries (built by the tests) against real
// processes, under faults that take servers down — a full disk, too few
// file descriptors, corrupted and hostile files, a frozen or starved
// daemon, crash storms, racing operators, closing terminals and signals.
//
// Each test checks what must hold and logs the figures it measured as
// "FIGURE: ..." lines (go test -v), which RELIABILITY.md reports. Parts that
// need root (a tmpfs, another user's process) skip without it. The long
// variants run from bench/soak.sh, which sets USRSVC_CHAOS_* variables.
package chaos
