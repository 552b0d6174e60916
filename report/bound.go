package report

import (
	"math"
	"runtime"
	"slices"
	"sync"
)

// The optimal-polling bound answers: given the times T at which the jobs of a run's tasks became visible
// (upload done → jobs visible, the run's ground truth), how low can the mean detection delay of any fixed
// schedule of jobs listings be for a given mean number of listings? A fixed schedule lists at offsets
// t1 < t2 < ... after the upload and stops at the first non-empty answer: a task with visibility time T is
// detected by the first tk ≥ T with delay tk − T and costs k listings, so the k-th listing is paid only by
// the tasks not yet visible at t(k−1).
//
// Over the empirical distribution x1 ≤ ... ≤ xn an optimal schedule lists only at sample values (moving a
// listing down to the largest sample it covers keeps what it detects and shortens every delay), and its last
// listing is at xn. Minimising E[delay] + c·E[listings] is then a partition of the sorted samples into
// consecutive groups, each detected by a listing at its largest value:
//
//	g(i) = min_{j<i} g(j) + Σ_{l=j+1..i} (x_i − x_l) + c·(n − j)
//	     = i·x_i − S_i + min_{j<i} (−j·x_i + g(j) + S_j + c·(n − j)),   S the prefix sums,
//
// a minimum over lines of slope −j queried at increasing x_i: the monotone convex-hull trick solves it in
// O(n), or O(K·n) with at most K listings (one layer per listing). Sweeping c traces the lower convex hull
// of the achievable (E[listings], E[delay]) points; chords between its vertices are reached by mixing two
// schedules at random, so the hull bounds every fixed schedule from below.
//
// Strategies that list on a fixed schedule (busyloop, poll) cannot lie below it, up to the sampling error of
// their own trials against the pooled distribution. Strategies that read other signals (the request's
// status and started_date, webhooks, what earlier trials taught) can: how far below they get is what that
// information is worth.

// BoundPoint is one vertex of the bound: the best fixed schedule at its mean listing count.
type BoundPoint struct {
	Requests float64   `json:"requests"` // mean listings per task
	DelayMs  float64   `json:"delay_ms"` // mean detection delay
	Listings int       `json:"listings"` // listings in the schedule (the last one at the largest sample)
	Schedule []float64 `json:"-"`        // the schedule's offsets after the upload, ms (for tests and plots)
}

// Bound is the lower frontier of (mean listings, mean detection delay) over fixed listing schedules for one
// empirical distribution.
type Bound struct {
	N        int `json:"n"`                   // samples
	MaxPolls int `json:"max_polls,omitempty"` // 0: schedules of any length
	// Points are the convex-hull vertices found, in ascending Requests and descending DelayMs: each is a
	// schedule's exact point, and the polyline through them is reached by mixing neighbouring schedules.
	Points []BoundPoint `json:"points"`
	// Duals are the supporting lines found: for price c, every schedule s has D(s) + c·R(s) ≥ Opt, so
	// delay ≥ Opt − c·requests everywhere. At is their maximum: a true lower bound even between vertices the
	// search did not resolve, and equal to the polyline wherever it did.
	Duals []DualLine `json:"-"`
}

// DualLine is the optimum Opt of E[delay] + Price·E[listings] over every fixed schedule.
type DualLine struct{ Price, Opt float64 }

// At returns the bound at a mean of requests listings per task: no fixed schedule has a lower mean delay at
// that mean listing count. It is not defined below one listing, where no listing schedule goes (ok false).
func (b Bound) At(requests float64) (delayMs float64, ok bool) {
	if len(b.Points) == 0 || requests < b.Points[0].Requests-1e-9 {
		return 0, false
	}
	for _, d := range b.Duals {
		delayMs = max(delayMs, d.Opt-d.Price*requests)
	}
	if requests <= b.Points[0].Requests+1e-9 {
		delayMs = max(delayMs, b.Points[0].DelayMs) // one listing for every task: the only schedule there
	}
	return delayMs, true
}

// PollingBound computes the bound over samples (visibility times after the upload, ms; any order; negative
// values count as 0) for schedules of at most maxPolls listings (0: any number).
func PollingBound(samples []float64, maxPolls int) Bound {
	x := slices.Clone(samples)
	for i, v := range x {
		x[i] = max(v, 0)
	}
	slices.Sort(x)
	n := len(x)
	b := Bound{N: n, MaxPolls: maxPolls}
	if n == 0 {
		return b
	}
	if maxPolls <= 0 || maxPolls > n {
		maxPolls = 0
	}
	pool := newSolverPool(x, maxPolls)
	one := pool.solvers[0].point([]int{n}) // one listing at the largest sample: the frontier's left end
	span := x[n-1] - x[0]
	if span == 0 {
		b.Points = []BoundPoint{one}
		return b
	}
	// Prices from where one listing wins (a second listing saves at most span·n in all and costs at least c)
	// down to where nothing changes any more: a listing at every sample, or with a cap the least-delay
	// schedule of maxPolls listings. Steps of 2, solved a core's worth at a time; refine then finds the
	// vertices in between.
	last := pool.points([]float64{0})[0]
	pts := []BoundPoint{one, last.BoundPoint}
	b.Duals = append(b.Duals, last.dual())
	lo := span / float64(n) / float64(n) / 4
	for c := span * float64(n) * 2; c >= lo; {
		var cs []float64
		for range len(pool.solvers) {
			if c >= lo {
				cs = append(cs, c)
			}
			c /= 2
		}
		done := false
		for _, r := range pool.points(cs) {
			pts = append(pts, r.BoundPoint)
			b.Duals = append(b.Duals, r.dual())
			done = done || r.Requests == last.Requests && r.DelayMs == last.DelayMs
		}
		if done {
			break // every lower price gives the same schedule
		}
	}
	b.Points = pool.refine(lowerHull(pts), 2*len(pts)+16, &b.Duals)
	return b
}

// pricedPoint is the optimum at a price.
type pricedPoint struct {
	BoundPoint
	price float64
}

func (p pricedPoint) dual() DualLine {
	return DualLine{p.price, p.DelayMs + p.price*p.Requests}
}

// solverPool solves for many prices at once, one solver per core: the solves are independent.
type solverPool struct{ solvers []*boundSolver }

func newSolverPool(x []float64, maxPolls int) *solverPool {
	p := &solverPool{}
	for range min(runtime.GOMAXPROCS(0), 8) {
		p.solvers = append(p.solvers, newBoundSolver(x, maxPolls))
	}
	return p
}

// points returns the optimal schedule's point for each price, in order.
func (p *solverPool) points(cs []float64) []pricedPoint {
	out := make([]pricedPoint, len(cs))
	var wg sync.WaitGroup
	for w, s := range p.solvers {
		wg.Go(func() {
			for i := w; i < len(cs); i += len(p.solvers) {
				out[i] = pricedPoint{s.point(s.solve(cs[i])), cs[i]}
			}
		})
	}
	wg.Wait()
	return out
}

// refine looks for hull vertices between neighbours: solving at the slope of their chord finds a point below
// it if there is one, and a supporting line either way. Each round solves every open edge at once; budget
// bounds the solves. Where it runs out, At's supporting lines still bound from below.
func (p *solverPool) refine(hull []BoundPoint, budget int, duals *[]DualLine) []BoundPoint {
	closed := map[[2]float64]bool{} // edges, by their ends' Requests, with nothing below them
	for budget > 0 {
		var edges []int
		var cs []float64
		for i := 0; i+1 < len(hull) && len(cs) < budget; i++ {
			a, b := hull[i], hull[i+1]
			if !closed[[2]float64{a.Requests, b.Requests}] {
				edges = append(edges, i)
				cs = append(cs, (a.DelayMs-b.DelayMs)/(b.Requests-a.Requests))
			}
		}
		if len(cs) == 0 {
			break
		}
		budget -= len(cs)
		found := p.points(cs)
		next := slices.Clone(hull)
		for k, i := range edges {
			a, b, r := hull[i], hull[i+1], found[k]
			*duals = append(*duals, r.dual())
			if chordGap(a, b, r.BoundPoint) > 1e-9*(1+a.DelayMs) {
				next = append(next, r.BoundPoint) // strictly below the chord: a new vertex
			} else {
				closed[[2]float64{a.Requests, b.Requests}] = true
			}
		}
		hull = lowerHull(next)
	}
	return hull
}

// boundSolver runs the dynamic programme over one sorted sample.
type boundSolver struct {
	x, prefix []float64 // prefix[i] = x[0] + ... + x[i-1]
	maxPolls  int
	g, gPrev  []float64
	arg       [][]int // arg[k][i]: the j of the best group ending at i with k+1 listings
	hull      []int   // the CHT's line indices (j)
	lineB     []float64
	slope     []float64 // slope[j] = j, the line of group start j has slope −j
}

func newBoundSolver(x []float64, maxPolls int) *boundSolver {
	n := len(x)
	s := &boundSolver{x: x, prefix: make([]float64, n+1), maxPolls: maxPolls,
		g: make([]float64, n+1), gPrev: make([]float64, n+1), lineB: make([]float64, n+1), hull: make([]int, 0, n+1)}
	s.slope = make([]float64, n+1)
	for i, v := range x {
		s.prefix[i+1] = s.prefix[i] + v
		s.slope[i+1] = float64(i + 1)
	}
	layers := 1
	if maxPolls > 0 {
		layers = maxPolls
	}
	s.arg = make([][]int, layers)
	for k := range s.arg {
		s.arg[k] = make([]int, n+1)
	}
	return s
}

// solve returns the group ends (ascending, the last n) of the schedule minimising Σ delay + c·Σ listings.
// With a cap it first solves without one: when that optimum keeps to the cap it is the capped optimum too,
// and one layer costs a K-th of the capped programme.
func (s *boundSolver) solve(c float64) []int {
	n := len(s.x)
	s.layer(c, 0, nil)
	free := s.trace(0, n, false)
	if s.maxPolls == 0 || len(free) <= s.maxPolls {
		return free
	}
	for i := range s.gPrev {
		s.gPrev[i] = math.Inf(1)
	}
	s.gPrev[0] = 0
	best, bestK := math.Inf(1), 0
	for k := 0; k < s.maxPolls; k++ {
		s.layer(c, k, s.gPrev)
		if s.g[n] < best {
			best, bestK = s.g[n], k
		}
		s.g, s.gPrev = s.gPrev, s.g
	}
	return s.trace(bestK, n, true)
}

// layer fills s.g: with prev nil, g(i) over groups of any count (lines from g itself); otherwise g(i) with
// exactly k+1 groups, one more than prev, recording the choices in s.arg[k]. Lines are j → (−j, lineB[j]),
// kept in s.hull[head:] with strictly decreasing slopes; queries x[i−1] only grow, so the head only advances.
func (s *boundSolver) layer(c float64, k int, prev []float64) {
	n := len(s.x)
	x, prefix, arg, lineB, g, slope := s.x, s.prefix, s.arg[k], s.lineB, s.g, s.slope
	from := g
	if prev != nil {
		from = prev
	}
	hull := s.hull[:0]
	head := 0
	nf := float64(n)
	first := 0 // with prev, groups before the (k+1)-th cover at least k samples
	if prev != nil {
		first = k
	}
	for i := 0; i <= n; i++ {
		if i > 0 && head == len(hull) {
			g[i] = math.Inf(1) // no group can end here: too few samples before it for k+1 groups
		} else if i > 0 {
			at := x[i-1]
			h := hull[head]
			best := lineB[h] - slope[h]*at
			for head+1 < len(hull) {
				next := hull[head+1]
				v := lineB[next] - slope[next]*at
				if v > best {
					break
				}
				head, h, best = head+1, next, v
			}
			g[i] = float64(i)*at - prefix[i] + best
			arg[i] = h
		} else if prev == nil {
			g[0] = 0
		} else {
			g[0] = math.Inf(1)
		}
		// Line i serves the groups that start after sample i.
		if i == n || i < first || math.IsInf(from[i], 1) {
			continue
		}
		bi := from[i] + prefix[i] + c*(nf-slope[i])
		lineB[i] = bi
		for len(hull)-head >= 2 {
			a, b := hull[len(hull)-2], hull[len(hull)-1]
			// b is useless once the lines a and i cross no later than a and b.
			if (bi-lineB[a])*(slope[b]-slope[a]) <= (lineB[b]-lineB[a])*(slope[i]-slope[a]) {
				hull = hull[:len(hull)-1]
			} else {
				break
			}
		}
		hull = append(hull, i)
	}
	s.hull = hull
}

// trace follows the recorded choices back from group end i in layer k.
func (s *boundSolver) trace(k, i int, layered bool) []int {
	var ends []int
	for i > 0 {
		ends = append(ends, i)
		i = s.arg[k][i]
		if layered {
			k--
		}
	}
	slices.Reverse(ends)
	return ends
}

// point evaluates the schedule with these group ends exactly.
func (s *boundSolver) point(ends []int) BoundPoint {
	n := float64(len(s.x))
	var delay, listings float64
	j := 0
	sched := make([]float64, len(ends))
	for k, i := range ends {
		at := s.x[i-1]
		delay += float64(i-j)*at - (s.prefix[i] - s.prefix[j])
		listings += float64(len(s.x) - j)
		sched[k] = at
		j = i
	}
	return BoundPoint{Requests: listings / n, DelayMs: delay / n, Listings: len(ends), Schedule: sched}
}

// chordGap is how far r lies below the chord from p to q, in delay (positive: below).
func chordGap(p, q, r BoundPoint) float64 {
	f := (r.Requests - p.Requests) / (q.Requests - p.Requests)
	return p.DelayMs + f*(q.DelayMs-p.DelayMs) - r.DelayMs
}

// lowerHull keeps the lower-left convex hull of pts: ascending requests, descending delay, convex.
func lowerHull(pts []BoundPoint) []BoundPoint {
	pts = slices.Clone(pts)
	slices.SortFunc(pts, func(a, b BoundPoint) int {
		if a.Requests != b.Requests {
			if a.Requests < b.Requests {
				return -1
			}
			return 1
		}
		switch {
		case a.DelayMs < b.DelayMs:
			return -1
		case a.DelayMs > b.DelayMs:
			return 1
		}
		return 0
	})
	var h []BoundPoint
	for _, p := range pts {
		if len(h) > 0 && p.DelayMs >= h[len(h)-1].DelayMs-1e-12 {
			continue // not lower than a cheaper point
		}
		for len(h) >= 2 {
			a, b := h[len(h)-2], h[len(h)-1]
			// b is above or on the chord a→p: drop it.
			if (b.DelayMs-a.DelayMs)*(p.Requests-a.Requests) >= (p.DelayMs-a.DelayMs)*(b.Requests-a.Requests) {
				h = h[:len(h)-1]
			} else {
				break
			}
		}
		h = append(h, p)
	}
	return h
}

// BestWithin is the least-delay fixed schedule of at most k listings per task over samples: the frontier's
// right end under that budget (PollingBound with maxPolls k, listings free).
func BestWithin(samples []float64, k int) BoundPoint {
	x := slices.Clone(samples)
	for i, v := range x {
		x[i] = max(v, 0)
	}
	slices.Sort(x)
	if len(x) == 0 || k < 1 {
		return BoundPoint{}
	}
	if k >= len(x) {
		k = 0 // a listing at every sample fits
	}
	s := newBoundSolver(x, k)
	return s.point(s.solve(0))
}
