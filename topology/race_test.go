//go:build race

package topology

// raceEnabled stretches time limits in tests: the race detector slows the
// YAML parser about tenfold.
const raceEnabled = true
