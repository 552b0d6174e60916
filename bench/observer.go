package bench

import (
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
)

// Observer receives live events from the runner (e.g. Prometheus metrics). Called concurrently.
type Observer interface {
	TrialStarted(strategy string)
	APICall(strategy string, c cvat.Call) // every HTTP attempt made during a trial (create, upload, wait)
	TrialFinished(rec record.Trial)
}
