//go:build race

package launch

// raceEnabled: the race detector's shadow memory counts in a process's
// anonymous memory.
const raceEnabled = true
