package report

import (
	"math"
	"math/rand/v2"
	"slices"
)

// rankQuantile returns the nearest-rank percentile p (0, 100] of sorted, the definition HdrHistogram uses, so
// compare's point values agree with the table up to HdrHistogram's 3 significant digits.
func rankQuantile(sorted []float64, p float64) float64 {
	return sorted[rankIndex(len(sorted), p)]
}

// rankIndex is the 0-based nearest-rank index of percentile p in n sorted values.
func rankIndex(n int, p float64) int {
	k := int(math.Ceil(p / 100 * float64(n)))
	return min(max(k, 1), n) - 1
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// statistic is what a bootstrap resamples: a percentile (nearest rank) or, with p == 0, the mean.
type statistic struct{ p float64 }

func (s statistic) of(sorted []float64) float64 {
	if s.p == 0 {
		return mean(sorted)
	}
	return rankQuantile(sorted, s.p)
}

// resampler draws bootstrap resamples of one sorted sample and evaluates a statistic on them in O(n): a
// percentile of a resample of a sorted sample is the value at the k-th smallest drawn index, so counting the
// drawn indices replaces sorting the resample.
type resampler struct {
	sorted []float64
	counts []int
}

func newResampler(sorted []float64) *resampler {
	return &resampler{sorted: sorted, counts: make([]int, len(sorted))}
}

func (r *resampler) draw(rng *rand.Rand, s statistic) float64 {
	n := len(r.sorted)
	clear(r.counts)
	for range n {
		r.counts[rng.IntN(n)]++
	}
	if s.p == 0 {
		sum := 0.0
		for i, c := range r.counts {
			sum += float64(c) * r.sorted[i]
		}
		return sum / float64(n)
	}
	k := rankIndex(n, s.p) + 1 // 1-based rank wanted
	seen := 0
	for i, c := range r.counts {
		seen += c
		if seen >= k {
			return r.sorted[i]
		}
	}
	return r.sorted[n-1]
}

// bootstrapDiff returns the percentile-bootstrap interval at level conf for stat(b) - stat(a), from
// resamples independent resamples of each sample, drawn from a generator seeded with seed (reproducible).
func bootstrapDiff(a, b []float64, s statistic, resamples int, conf float64, seed [2]uint64) (lo, hi float64) {
	rng := rand.New(rand.NewPCG(seed[0], seed[1]))
	ra, rb := newResampler(a), newResampler(b)
	diffs := make([]float64, resamples)
	for i := range diffs {
		diffs[i] = rb.draw(rng, s) - ra.draw(rng, s)
	}
	slices.Sort(diffs)
	tail := (1 - conf) / 2
	lo = diffs[min(int(math.Floor(tail*float64(resamples))), resamples-1)]
	hi = diffs[max(int(math.Ceil((1-tail)*float64(resamples)))-1, 0)]
	return lo, hi
}

// mannWhitney returns the two-sided p-value of the Mann–Whitney U test that a and b come from the same
// distribution: normal approximation with tie correction and continuity correction. Identical constant
// samples give p = 1.
func mannWhitney(a, b []float64) float64 {
	na, nb := len(a), len(b)
	type obs struct {
		v    float64
		from int
	}
	all := make([]obs, 0, na+nb)
	for _, v := range a {
		all = append(all, obs{v, 0})
	}
	for _, v := range b {
		all = append(all, obs{v, 1})
	}
	slices.SortFunc(all, func(x, y obs) int {
		switch {
		case x.v < y.v:
			return -1
		case x.v > y.v:
			return 1
		}
		return 0
	})
	n := float64(na + nb)
	rankSumA, ties := 0.0, 0.0
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		mid := float64(i+j+1) / 2 // ranks i+1..j share their mean
		for k := i; k < j; k++ {
			if all[k].from == 0 {
				rankSumA += mid
			}
		}
		t := float64(j - i)
		ties += t*t*t - t
		i = j
	}
	u := rankSumA - float64(na)*float64(na+1)/2
	mu := float64(na) * float64(nb) / 2
	sigma := math.Sqrt(float64(na) * float64(nb) / 12 * ((n + 1) - ties/(n*(n-1))))
	if sigma == 0 {
		return 1
	}
	z := (math.Abs(u-mu) - 0.5) / sigma
	if z < 0 {
		z = 0
	}
	return math.Erfc(z / math.Sqrt2)
}
