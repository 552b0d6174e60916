//go:build race

package cvatsim

// raceDetector is true in binaries built with -race.
const raceDetector = true
