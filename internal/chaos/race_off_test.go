//go:build !race

package chaos

// raceEnabled: the tests run under the race detector.
const raceEnabled = false
