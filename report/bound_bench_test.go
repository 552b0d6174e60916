package report_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cvatbench/cvatbench/report"
)

// visibilitySamples draws n lognormal visibility times around 300 ms, the shape of cvat-default's.
func visibilitySamples(n int) []float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = 300 * math.Exp(0.35*rng.NormFloat64())
	}
	return xs
}

// BenchmarkPollingBoundK20 is the target: at most 20 listings over 10,000 trials, under 100 ms.
func BenchmarkPollingBoundK20(b *testing.B) {
	xs := visibilitySamples(10_000)
	for b.Loop() {
		if bd := report.PollingBound(xs, 20); len(bd.Points) < 2 {
			b.Fatal(bd)
		}
	}
}

// BenchmarkPollingBoundAny is the bound the report draws: schedules of any length.
func BenchmarkPollingBoundAny(b *testing.B) {
	xs := visibilitySamples(10_000)
	for b.Loop() {
		if bd := report.PollingBound(xs, 0); len(bd.Points) < 2 {
			b.Fatal(bd)
		}
	}
}
