package report_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cvatbench/cvatbench/report"
)

// uniformSamples is the empirical uniform distribution on [0, l]: n samples at the midpoints of n equal bins.
func uniformSamples(n int, l float64) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = (float64(i) + 0.5) / float64(n) * l
	}
	return xs
}

// With at most K listings and listings free (c → 0, the frontier's right end), the delay-optimal schedule
// for a uniform distribution lists at equal spacing, L/K apart, with mean delay L/(2K) and mean listings
// (K+1)/2.
func TestBoundUniformEqualSpacing(t *testing.T) {
	const n, l = 2000, 1000.0
	for _, k := range []int{1, 2, 3, 5, 20} {
		b := report.PollingBound(uniformSamples(n, l), k)
		last := b.Points[len(b.Points)-1]
		if last.Listings != k {
			t.Fatalf("K=%d: the cheapest-delay vertex lists %d times", k, last.Listings)
		}
		for j, at := range last.Schedule {
			if want := float64(j+1) * l / float64(k); math.Abs(at-want) > l/n {
				t.Errorf("K=%d: listing %d at %.2f ms, want %.2f (equal spacing)", k, j+1, at, want)
			}
		}
		if want := l / float64(2*k); math.Abs(last.DelayMs-want) > l/n {
			t.Errorf("K=%d: mean delay %.3f ms, want %.3f", k, last.DelayMs, want)
		}
		if want := float64(k+1) / 2; math.Abs(last.Requests-want) > float64(k)/n {
			t.Errorf("K=%d: mean listings %.4f, want %.4f", k, last.Requests, want)
		}
	}
}

// With listings priced at c, the optimum over a uniform distribution on [0, L] shortens each gap by exactly c
// (the first-order condition d(j+1) = d(j) − c), and its cost is the best over m of the closed form with
// d1 = L/m + c(m−1)/2. Every vertex of the bound is such an optimum for the c of its supporting line.
func TestBoundUniformGapsShrinkByTheListingPrice(t *testing.T) {
	const n, l = 4000, 1000.0
	b := report.PollingBound(uniformSamples(n, l), 0)
	checked := 0
	for i := 1; i+1 < len(b.Points); i++ {
		p := b.Points[i]
		if p.Listings < 3 || p.Listings > 12 {
			continue
		}
		// Any c between the slopes of its two hull edges makes p optimal; take their mean.
		left := (b.Points[i-1].DelayMs - p.DelayMs) / (p.Requests - b.Points[i-1].Requests)
		right := (p.DelayMs - b.Points[i+1].DelayMs) / (b.Points[i+1].Requests - p.Requests)
		c := (left + right) / 2
		prev := 0.0
		var gaps []float64
		for _, at := range p.Schedule {
			gaps = append(gaps, at-prev)
			prev = at
		}
		for j := 1; j < len(gaps); j++ {
			if d := gaps[j-1] - gaps[j]; math.Abs(d-c) > math.Abs(left-right)/2+2*l/n {
				t.Errorf("%d listings, c=%.2f: gap %d→%d shrinks by %.2f ms, want %.2f", p.Listings, c, j, j+1, d, c)
			}
		}
		got := p.DelayMs + c*p.Requests
		if want := closedFormUniform(l, c); math.Abs(got-want) > 0.01*want+2*l/n {
			t.Errorf("%d listings: E[delay]+c·E[listings] = %.3f, closed form %.3f", p.Listings, got, want)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d vertices with 3..12 listings among %d", checked, len(b.Points))
	}
}

// closedFormUniform is min over m of E[delay] + c·E[listings] for the uniform distribution on [0, l], with
// gaps d1, d1−c, ... summing to l.
func closedFormUniform(l, c float64) float64 {
	best := math.Inf(1)
	for m := 1; m < 1000; m++ {
		d1 := l/float64(m) + c*float64(m-1)/2
		if d1-float64(m-1)*c < 0 {
			break
		}
		var delay, listings, at float64
		for j := 0; j < m; j++ {
			d := d1 - float64(j)*c
			delay += d * d / (2 * l)
			listings += 1 - at/l
			at += d
		}
		best = min(best, delay+c*listings)
	}
	return best
}

// Every fixed schedule, enumerated by brute force over small samples, lies on or above the bound, and
// every vertex of the bound is a schedule's exact point.
func TestBoundBelowEverySchedule(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 40; trial++ {
		n := 1 + rng.IntN(9)
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = math.Round(rng.ExpFloat64()*300 + 50)
		}
		maxPolls := rng.IntN(4) // 0: any
		b := report.PollingBound(xs, maxPolls)
		points := bruteForceSchedules(xs, maxPolls)
		for _, p := range points {
			bound, ok := b.At(p[0])
			if !ok || bound > p[1]+1e-9 {
				t.Fatalf("samples %v, at most %d listings: schedule (%.4f, %.4f) is below the bound %.4f (%v)",
					xs, maxPolls, p[0], p[1], bound, b.Points)
			}
		}
		for _, v := range b.Points {
			found := false
			for _, p := range points {
				found = found || (math.Abs(p[0]-v.Requests) < 1e-9 && math.Abs(p[1]-v.DelayMs) < 1e-9)
			}
			if !found {
				t.Fatalf("samples %v: vertex %+v is no schedule's point", xs, v)
			}
		}
	}
}

// bruteForceSchedules returns (mean listings, mean delay) of every schedule listing at a subset of the
// sorted distinct samples that includes the largest, with at most maxPolls listings (0: any).
func bruteForceSchedules(xs []float64, maxPolls int) [][2]float64 {
	sorted := append([]float64(nil), xs...)
	for i := range sorted {
		for j := i + 1; j < len(sorted); j++ {
			if sorted[j] < sorted[i] {
				sorted[i], sorted[j] = sorted[j], sorted[i]
			}
		}
	}
	n := len(sorted)
	var out [][2]float64
	for mask := 0; mask < 1<<(n-1); mask++ {
		var sched []float64
		for i := 0; i < n-1; i++ {
			if mask&(1<<i) != 0 {
				sched = append(sched, sorted[i])
			}
		}
		sched = append(sched, sorted[n-1])
		if maxPolls > 0 && len(sched) > maxPolls {
			continue
		}
		var listings, delay float64
		for _, x := range sorted {
			for k, at := range sched {
				if at >= x {
					listings += float64(k + 1)
					delay += at - x
					break
				}
			}
		}
		out = append(out, [2]float64{listings / float64(n), delay / float64(n)})
	}
	return out
}

func TestBoundDegenerate(t *testing.T) {
	if b := report.PollingBound(nil, 0); len(b.Points) != 0 {
		t.Errorf("no samples: %+v", b)
	}
	b := report.PollingBound([]float64{120, 120, 120}, 0)
	if len(b.Points) != 1 || b.Points[0].Requests != 1 || b.Points[0].DelayMs != 0 {
		t.Errorf("equal samples: %+v", b.Points)
	}
	if _, ok := b.At(0.5); ok {
		t.Error("the bound is defined below one listing")
	}
	if d, ok := b.At(3); !ok || d != 0 {
		t.Errorf("At(3) = %v, %v", d, ok)
	}
}

// BestWithin is the right end of the capped frontier, and for a uniform distribution lists at equal spacing.
func TestBestWithinIsTheCappedFrontiersEnd(t *testing.T) {
	xs := visibilitySamples(3000)
	for _, k := range []int{1, 2, 3, 7} {
		b := report.PollingBound(xs, k)
		last, got := b.Points[len(b.Points)-1], report.BestWithin(xs, k)
		if math.Abs(last.DelayMs-got.DelayMs) > 1e-9 || got.Listings != k {
			t.Errorf("k=%d: BestWithin %+v, capped frontier ends at %+v", k, got, last)
		}
	}
	if got := report.BestWithin(uniformSamples(1200, 900), 3); math.Abs(got.DelayMs-150) > 1 {
		t.Errorf("uniform on [0, 900] within 3 listings: %.2f ms, want 150 (= 900/6)", got.DelayMs)
	}
	if got := report.BestWithin([]float64{5, 1}, 9); got.DelayMs != 0 || got.Listings != 2 {
		t.Errorf("more listings than samples: %+v", got)
	}
}
