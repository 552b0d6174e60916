package strategies

import (
	"math"
	"slices"
)

// adaptiveModel is the predictive distribution of V = Q + P for one trial.
type adaptiveModel struct {
	queue []float64 // sorted queue-wait atoms, equal weights
	proc  procDist
	cost  float64 // c of the schedule, seconds per request
}

// procDist is the predictive distribution of P: a log-normal kernel mixture over atoms.
type procDist struct {
	logs []float64 // ln seconds of the data atoms, weight 1 each
	h    float64   // kernel width in log space
}

func newAdaptiveModel(queue []float64, proc []adaptiveSample, n float64) *adaptiveModel {
	q := slices.Clone(queue)
	slices.Sort(q)
	return &adaptiveModel{queue: q, proc: newProcDist(proc, n), cost: adaptiveRequestCost}
}

// shortQueue reports whether the queue waits seen are short next to the processing: status reads would buy
// little.
func (m *adaptiveModel) shortQueue() bool {
	if len(m.queue) < adaptiveSkipMinSamples || len(m.proc.logs) < adaptiveSkipMinSamples {
		return false
	}
	return quantile(m.queue, 0.9) < adaptiveSkipQueueShare*math.Exp(quantile(m.proc.logs, 0.5))
}

// newProcDist fits f(n) = α + β·n to the samples and returns the atoms ratio × f(n) for size n.
func newProcDist(samples []adaptiveSample, n float64) procDist {
	var d procDist
	if len(samples) == 0 {
		return d
	}
	var meanN, meanT, minT float64
	minT = math.Inf(1)
	for _, s := range samples {
		meanN += s.n
		meanT += s.seconds
		minT = min(minT, s.seconds)
	}
	meanN /= float64(len(samples))
	meanT /= float64(len(samples))
	var sxx, sxy float64
	for _, s := range samples {
		sxx += (s.n - meanN) * (s.n - meanN)
		sxy += (s.n - meanN) * (s.seconds - meanT)
	}
	beta := 0.0
	if sxx > 0 && sxy > 0 {
		beta = sxy / sxx
	}
	alpha := meanT - beta*meanN
	// A negative intercept can make f(n) ≤ 0 for small tasks; no creation is faster than the fastest seen.
	f := func(x float64) float64 { return max(alpha+beta*x, minT) }
	scale := f(n)
	logs := make([]float64, len(samples))
	for i, s := range samples {
		logs[i] = math.Log(s.seconds / f(s.n) * scale)
	}
	slices.Sort(logs)
	d.h = bandwidth(logs)
	if len(logs) > adaptiveProcAtoms {
		logs = thinSorted(logs, adaptiveProcAtoms)
	}
	d.logs = logs
	return d
}

// bandwidth is Silverman's rule of thumb, 0.9·min(sd, IQR/1.34)·N^(−1/5), for sorted log atoms, at least
// adaptiveMinBandwidth and adaptiveSmallSample/√N.
func bandwidth(sorted []float64) float64 {
	n := float64(len(sorted))
	floor := max(adaptiveMinBandwidth, adaptiveSmallSample/math.Sqrt(n))
	if len(sorted) < 2 {
		return floor
	}
	var mean, ss float64
	for _, x := range sorted {
		mean += x
	}
	mean /= n
	for _, x := range sorted {
		ss += (x - mean) * (x - mean)
	}
	spread := math.Sqrt(ss / (n - 1))
	if iqr := (quantile(sorted, 0.75) - quantile(sorted, 0.25)) / 1.34; iqr > 0 {
		spread = min(spread, iqr)
	}
	return max(0.9*spread*math.Pow(n, -0.2), floor)
}

// thinSorted returns k evenly spaced quantiles of sorted.
func thinSorted(sorted []float64, k int) []float64 {
	out := make([]float64, k)
	for i := range out {
		out[i] = quantile(sorted, (float64(i)+0.5)/float64(k))
	}
	return out
}

// cdf returns P(P ≤ x), x in seconds.
func (d procDist) cdf(x float64) float64 {
	if x <= 0 {
		return 0
	}
	if len(d.logs) == 0 {
		return 0
	}
	lx := math.Log(x)
	sum := 0.0
	// The atoms are sorted: those more than 8 widths below lx count fully, those 8 widths above not at all.
	lo, _ := slices.BinarySearch(d.logs, lx-8*d.h)
	hi, _ := slices.BinarySearch(d.logs, lx+8*d.h)
	sum += float64(lo)
	for _, l := range d.logs[lo:hi] {
		sum += normCDF((lx - l) / d.h)
	}
	return sum / float64(len(d.logs))
}

// upper bounds the distribution: beyond it less than about 0.1 % of the mass is left; 0 without data.
func (d procDist) upper() float64 {
	if len(d.logs) == 0 {
		return 0
	}
	return math.Exp(d.logs[len(d.logs)-1] + 3.1*d.h)
}

func normCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// plan returns the poll times in seconds since the upload, for a trial at elapsed seconds after the upload.
// started ≥ 0 is the known queue wait (the request started that long after the upload); otherwise the queue
// wait is taken from its atoms, conditioned on exceeding queuedFor.
func (m *adaptiveModel) plan(queuedFor, started, elapsed float64) []float64 {
	if len(m.proc.logs) == 0 {
		return nil // nothing learnt yet: the scale-free tail polls
	}
	shifts := []float64{started}
	if started < 0 {
		shifts = nil
		for _, q := range m.queue {
			if q > queuedFor {
				shifts = append(shifts, q)
			}
		}
		if len(shifts) == 0 { // queued longer than ever seen: assume it starts now
			shifts = []float64{elapsed}
		}
		if len(shifts) > adaptiveQueueAtoms {
			shifts = thinSorted(shifts, adaptiveQueueAtoms)
		}
	}
	hi := shifts[len(shifts)-1] + m.proc.upper()
	// F_P is tabulated once and interpolated: the mixture needs it at every grid point for every shift.
	span := hi - shifts[0]
	table := make([]float64, adaptiveTable+1)
	for i := range table {
		table[i] = m.proc.cdf(span * float64(i) / adaptiveTable)
	}
	procCDF := func(x float64) float64 {
		if x <= 0 {
			return 0
		}
		h := x / span * adaptiveTable
		i := int(h)
		if i >= adaptiveTable {
			return table[adaptiveTable]
		}
		return table[i] + (h-float64(i))*(table[i+1]-table[i])
	}
	cdf := func(t float64) float64 {
		var s float64
		for _, q := range shifts {
			s += procCDF(t - q)
		}
		return s / float64(len(shifts))
	}
	return pollSchedule(cdf, elapsed, hi, m.cost)
}

// pollSchedule returns the poll times t₁ < t₂ < ... in (a, hi] minimising c·E[polls] + E[t_k − V], where
// t_k is the first poll at or after V, for V distributed as cdf conditioned on V > a. A poll at t_j is made
// only if V > t_{j−1}, so with survival S it costs c·S(t_{j−1}). The grid has adaptiveGrid steps of at least
// adaptiveMinStep; polls are at least adaptiveMinGap apart, except a last one at hi. It returns nil when no
// mass is left after a.
func pollSchedule(cdf func(float64) float64, a, hi, c float64) []float64 {
	if !(hi > a) {
		return nil
	}
	step := max((hi-a)/adaptiveGrid, adaptiveMinStep)
	n := int(math.Ceil((hi - a) / step))
	g := make([]float64, n+1)
	f0 := cdf(a)
	s0 := 1 - f0
	if s0 < 1e-9 {
		return nil
	}
	// mass[k] = P(V ≤ g_k | V > a); first[k] = Σ_{i≤k} P(V ∈ (g_{i−1}, g_i]) × the cell's midpoint.
	mass := make([]float64, n+1)
	first := make([]float64, n+1)
	for k := range g {
		g[k] = a + float64(k)*step
		if k == 0 {
			continue
		}
		mass[k] = min(max((cdf(g[k])-f0)/s0, mass[k-1]), 1)
		first[k] = first[k-1] + (mass[k]-mass[k-1])*(g[k]-step/2)
	}
	delay := func(i, j int) float64 { return g[j]*(mass[j]-mass[i]) - (first[j] - first[i]) }
	gap := max(int(math.Ceil(adaptiveMinGap/step-1e-9)), 1)
	// cost[i]: expected cost still to pay after a poll at g_i; next[i]: the next poll (0: none).
	cost := make([]float64, n+1)
	next := make([]int, n+1)
	for i := n - 1; i >= 0; i-- { // cost[n] = 0: the mass beyond hi is left to the tail
		// The first poll needs no gap (nothing is in flight); the last may be closer than the gap, at hi,
		// so that no mass before hi is left undetected for free.
		lo := min(i+gap, n)
		if i == 0 {
			lo = 1
		}
		best := math.Inf(1)
		for j := lo; j <= n; j++ {
			if v := c*(1-mass[i]) + delay(i, j) + cost[j]; v < best {
				best, next[i] = v, j
			}
		}
		cost[i] = best
	}
	var out []float64
	for i := next[0]; i > 0; i = next[i] {
		out = append(out, g[i])
	}
	return out
}

// quantile interpolates linearly between the order statistics of sorted (Hyndman–Fan type 7).
func quantile(sorted []float64, q float64) float64 {
	h := q * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}
