//go:build race

package render

// raceEnabled: under the race detector the property test runs fewer
// sequences; `make test` also runs it in full without the detector.
const raceEnabled = true
