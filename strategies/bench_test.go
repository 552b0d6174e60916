package strategies_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/strategies"
)

// BenchmarkUIStep measures the web UI's delay computation for one answer.
func BenchmarkUIStep(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 2))
	idx := 0
	for b.Loop() {
		idx, _ = strategies.UIStep("queued", idx%12, 0, 0, rnd.Float64)
	}
}

// BenchmarkAdaptivePlan measures one prediction over a full window of 256 samples, the cost a trial pays
// before its first poll.
func BenchmarkAdaptivePlan(b *testing.B) {
	a := strategies.NewAdaptive()
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range 256 {
		d := time.Duration(500+rnd.IntN(2000)) * time.Millisecond
		adaptiveTrial(b, a, 1+i%50, d)
	}
	for b.Loop() {
		if len(strategies.AdaptivePlan(a, 20)) == 0 {
			b.Fatal("empty plan")
		}
	}
}
