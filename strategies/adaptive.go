package strategies

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// Tuning of the adaptive strategy. Durations of the model are float seconds.
const (
	adaptiveWindow = 256 // most recent samples kept, per ring

	// adaptiveRequestCost is c, the exchange rate of the schedule: one request is worth c seconds of
	// detection delay. The schedule minimises E[delay] + c·E[requests]; near the median of a 0.65 s creation
	// with σ = 0.3 this places polls roughly 0.1 s apart (Δ ≈ √(2c / hazard)).
	adaptiveRequestCost = 0.02

	adaptiveGrid     = 400   // grid points of the schedule's dynamic programme
	adaptiveTable    = 512   // points of the tabulated processing CDF
	adaptiveMinStep  = 0.005 // finest grid step: 5 ms
	adaptiveMinGap   = 0.025 // two planned polls at least one API read (≈ 20 ms, CALIBRATION §3.2) apart
	adaptiveMinPause = 5 * time.Millisecond

	adaptiveProcAtoms  = 64 // processing atoms kept in one prediction (quantiles of the data)
	adaptiveQueueAtoms = 8  // queue-wait atoms kept in one prediction

	// The prior, from CALIBRATION.md §3.2: processing (started → commit) LogN(0.6 s, 0.3) plus 3 ms per image
	// and about 10 ms per job (two jobs for a small task, plus the commit), queue pick-up 50 ms.
	adaptivePriorProcFixed    = 0.65
	adaptivePriorProcPerImage = 0.003
	adaptivePriorSigma        = 0.3
	adaptivePriorWeight       = 2.0 // the prior counts as this many processing samples
	adaptivePriorPickUp       = 0.05
	adaptiveMinBandwidth      = 0.03 // log-space kernel width floor

	adaptiveFallbackInitial = 50 * time.Millisecond   // first pause of the tail after the plan
	adaptiveFallbackFactor  = 1.5                     // growth of the tail
	adaptiveFallbackMax     = 1000 * time.Millisecond // cap of the tail
)

// Adaptive is our strategy: it learns online, across the trials of a run, how long the server queues and
// processes a task creation, and polls when the jobs are likely to have appeared instead of on a fixed
// schedule.
//
// Model. The time from the upload's 202 until the jobs are visible is V = Q + P (API.md §6.1, §9.3):
//   - Q, the queue wait, = started_date − created_date of the creation request (server clock, so no clock
//     offset is needed). It depends on the other creations running (2 import workers, CALIBRATION §3.1), not
//     on this task, so it is kept as an empirical distribution of the last 256 waits, plus one prior atom at
//     the 50 ms pick-up.
//   - P, the processing, = visible − started_date, where visible is the newest created_date of the task's
//     jobs (the rows are saved in the creation's transaction, just before the commit that makes them visible,
//     §9.2–9.3), else the request's finished_date if seen, else the midpoint between the last empty and the
//     first non-empty listing. P grows with the task: over the last 256 samples (n = images, P)
//     it is fitted as f(n) = α + β·n by least squares (β ≥ 0), and the ratios P/f(n) give, for a trial of n
//     images, atoms ratio × f(n). The predictive distribution is a log-normal kernel mixture over those atoms
//     (Silverman's bandwidth in log space, at least 0.03), mixed with the prior LogN(0.65 s + 3 ms·n, 0.3) of
//     CALIBRATION §3.2 at the weight of 2 samples. So the first trial of a run already polls around 0.7 s
//     instead of backing off blind, and the data take over as they come.
//
// Schedule. Server times map to the local clock through created_date ≈ Trial.UploadedAt (the 202 leaves
// right after the enqueue, §9.1). Given the distribution F of V conditioned on what is known (V > now, and
// Q > elapsed while the request is queued, or Q exactly once it started), the poll times minimise
// E[detection delay] + c·E[requests], c = 20 ms, by dynamic programming over a grid of 400 steps (≥ 5 ms,
// polls ≥ 25 ms apart); a poll at t costs c only if V > the previous poll. The optimum polls densely where
// the hazard f/(1−F) is high, about √(2c / hazard) apart, and sparsely before and in the tail, so it needs
// no hand-picked quantiles. Beyond the grid (the prediction's ~99.9 % bound) a short tail of 50 ms × 1.5ⁿ
// capped at 1 s takes over.
//
// Endpoints. While the start is unknown, polls read GET /api/requests/{rq_id}: it tells queued from started
// and carries the dates (re-planned after every answer). Once the request reads "started", the rest of the
// plan is re-computed from started_date and polls GET /api/jobs?task_id&page_size=all&sort=id directly:
// jobs appear all at once at the commit (§9.3), so a non-empty list is complete, is seen a few ms before the
// request reads finished, and saves the final listing call. "finished" in a status answer ends with one
// listing; "failed" is a *RequestFailedError; a 404 (expired) reads the jobs list on the tail schedule, like
// Backoff.
//
// Goal: fewer requests than poll (one status call and a few listings near the predicted commit instead of
// one listing per 100 ms from the upload on) and a lower detection delay than backoff at p50 (polls ≈ 0.1 s
// apart where the commit is likely, where backoff's pause has grown to the elapsed time).
//
// Wait is safe for concurrent use: the samples are guarded by a mutex, and every plan works on a snapshot.
type Adaptive struct {
	mu    sync.Mutex
	queue adaptiveRing[float64]        // queue waits Q, seconds
	proc  adaptiveRing[adaptiveSample] // processing times P with the task size
}

// adaptiveSample is one processing time: n images took seconds.
type adaptiveSample struct {
	n, seconds float64
}

// adaptiveRing keeps the last adaptiveWindow values.
type adaptiveRing[T any] struct {
	vals []T
	next int // position of the next value once full
}

func (r *adaptiveRing[T]) add(v T) {
	if len(r.vals) < adaptiveWindow {
		r.vals = append(r.vals, v)
		return
	}
	r.vals[r.next] = v
	r.next = (r.next + 1) % adaptiveWindow
}

// NewAdaptive returns the adaptive strategy with no history (the prior only).
func NewAdaptive() *Adaptive { return &Adaptive{} }

// Name returns "adaptive".
func (*Adaptive) Name() string { return "adaptive" }

// Wait polls the request until it started, then the jobs list, at the times of the plan.
func (a *Adaptive) Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error) {
	if t.RqID == "" {
		return Outcome{}, errors.New("no creation request id to poll")
	}
	origin := t.UploadedAt
	if origin.IsZero() {
		origin = clk.Now()
	}
	since := func() float64 { return clk.Now().Sub(origin).Seconds() }
	m := a.model(t.Images)
	tail := newAdaptiveTail()

	// Status phase: the next poll is the first of the plan for what is known now.
	queuedFor := 0.0 // the request was seen queued this long after the upload
	var last *cvat.Request
	for {
		plan := m.plan(queuedFor, -1, since())
		if err := sleep(ctx, clk, adaptivePause(clk, origin, plan, tail)); err != nil {
			return Outcome{Request: last}, err
		}
		rq, err := api.GetRequest(ctx, t.RqID)
		if errors.Is(err, cvat.ErrNotFound) {
			return waitJobsAfterExpiry(ctx, api, clk, t.TaskID, last, tail.next)
		}
		if err != nil {
			return Outcome{Request: last}, fmt.Errorf("get request %s: %w", t.RqID, err)
		}
		last = reqPtr(rq)
		if rq.Status == cvat.StatusStarted {
			break
		}
		switch rq.Status {
		case cvat.StatusFailed:
			return Outcome{Request: last}, failed(rq, t.RqID)
		case cvat.StatusFinished:
			ids, visible, err := listJobsNewest(ctx, api, t.TaskID)
			if err != nil {
				return Outcome{Request: last}, err
			}
			a.observe(t.Images, rq, visible)
			return finish(clk, ids, SignalRequestFinished, last)
		}
		queuedFor = since() // queued (or an unknown state): the start is still ahead
	}

	// Jobs phase: the start is known; plan the rest from started_date once, then list the jobs.
	started := -1.0
	if last.StartedDate != nil && !last.CreatedDate.IsZero() {
		started = max(last.StartedDate.Sub(last.CreatedDate).Seconds(), 0)
		a.observeQueue(started)
	}
	if started < 0 { // no dates: the request started by the time of this answer
		started = since()
	}
	plan := m.plan(0, started, since())
	empty := clk.Now() // the last answer without jobs
	for {
		if err := sleep(ctx, clk, adaptivePause(clk, origin, plan, tail)); err != nil {
			return Outcome{Request: last}, err
		}
		ids, visible, err := listJobsNewest(ctx, api, t.TaskID)
		if err != nil {
			return Outcome{Request: last}, err
		}
		now := clk.Now()
		if len(ids) == 0 {
			empty = now
			continue
		}
		if visible.IsZero() && !last.CreatedDate.IsZero() {
			// Jobs without dates: the commit fell between the last two answers; take the midpoint, on the
			// server clock through created_date ≈ origin.
			visible = last.CreatedDate.Add(empty.Sub(origin) + now.Sub(empty)/2)
		}
		a.observe(t.Images, *last, visible)
		return Outcome{JobIDs: ids, SeenAt: now, Signal: SignalJobsList, Request: last}, nil
	}
}

// adaptiveTail is the short backoff after the plan: 50 ms × 1.5ⁿ capped at 1 s.
type adaptiveTail struct{ d time.Duration }

func newAdaptiveTail() *adaptiveTail { return &adaptiveTail{d: adaptiveFallbackInitial} }

func (t *adaptiveTail) next() time.Duration {
	d := t.d
	t.d = min(time.Duration(float64(t.d)*adaptiveFallbackFactor), adaptiveFallbackMax)
	return d
}

// adaptivePause returns the pause until the first planned time (seconds since origin) still ahead, or the
// tail's next pause when none is left. It is never below adaptiveMinPause, so no loop polls back to back.
func adaptivePause(clk Clock, origin time.Time, plan []float64, tl *adaptiveTail) time.Duration {
	now := clk.Now()
	for _, at := range plan {
		if d := origin.Add(fromSeconds(at)).Sub(now); d > 0 {
			return max(d, adaptiveMinPause)
		}
	}
	return tl.next()
}

func fromSeconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// listJobsNewest lists every job of the task (page_size=all, sort=id, following next links) and returns the
// IDs ascending and the newest job created_date, zero if any job has none.
func listJobsNewest(ctx context.Context, api API, taskID int) ([]int, time.Time, error) {
	q := allJobsQuery(taskID)
	p, err := api.ListJobs(ctx, q)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("list jobs of task %d: %w", taskID, err)
	}
	var ids []int
	var newest time.Time
	dated := true
	add := func(jobs []cvat.Job) {
		for _, j := range jobs {
			ids = append(ids, j.ID)
			dated = dated && !j.CreatedDate.IsZero()
			if j.CreatedDate.After(newest) {
				newest = j.CreatedDate
			}
		}
	}
	add(p.Results)
	for p.Next != nil && *p.Next != "" {
		if len(p.Results) == 0 {
			return nil, time.Time{}, fmt.Errorf("list jobs of task %d: empty page with a next link", taskID)
		}
		if p, err = api.ListJobsPage(ctx, *p.Next); err != nil {
			return nil, time.Time{}, fmt.Errorf("list jobs of task %d: %w", taskID, err)
		}
		add(p.Results)
	}
	slices.Sort(ids)
	if !dated {
		newest = time.Time{}
	}
	return slices.Compact(ids), newest, nil
}

// observeQueue records one queue wait.
func (a *Adaptive) observeQueue(q float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue.add(q)
}

// observe records the processing time of a finished creation: from started_date to visible (the newest job
// date), or to finished_date when visible is zero or not after the start. A request seen only finished also
// gives its queue wait.
func (a *Adaptive) observe(images int, rq cvat.Request, visible time.Time) {
	if rq.StartedDate == nil {
		return
	}
	end := visible
	if end.IsZero() || !end.After(*rq.StartedDate) || (rq.FinishedDate != nil && end.After(*rq.FinishedDate)) {
		if rq.FinishedDate == nil {
			return
		}
		end = *rq.FinishedDate
	}
	p := end.Sub(*rq.StartedDate).Seconds()
	if p <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if rq.Status == cvat.StatusFinished && !rq.CreatedDate.IsZero() {
		a.queue.add(max(rq.StartedDate.Sub(rq.CreatedDate).Seconds(), 0))
	}
	a.proc.add(adaptiveSample{n: float64(max(images, 1)), seconds: p})
}

// model returns the prediction for a trial of the given size from a snapshot of the samples.
func (a *Adaptive) model(images int) *adaptiveModel {
	a.mu.Lock()
	queue := slices.Clone(a.queue.vals)
	proc := slices.Clone(a.proc.vals)
	a.mu.Unlock()
	return newAdaptiveModel(queue, proc, float64(max(images, 1)))
}

// adaptiveModel is the predictive distribution of V = Q + P for one trial.
type adaptiveModel struct {
	queue []float64 // sorted queue-wait atoms, the prior pick-up included, equal weights
	proc  procDist
	cost  float64 // c of the schedule, seconds per request
}

// procDist is the predictive distribution of P: a log-normal kernel mixture over atoms, plus the prior.
type procDist struct {
	logs   []float64 // ln seconds of the data atoms, weight 1 each
	h      float64   // kernel width in log space
	priorM float64   // ln median of the prior
	priorW float64   // weight of the prior
}

func newAdaptiveModel(queue []float64, proc []adaptiveSample, n float64) *adaptiveModel {
	q := append(slices.Clone(queue), adaptivePriorPickUp)
	slices.Sort(q)
	return &adaptiveModel{queue: q, proc: newProcDist(proc, n), cost: adaptiveRequestCost}
}

// newProcDist fits f(n) = α + β·n to the samples and returns the atoms ratio × f(n) for size n.
func newProcDist(samples []adaptiveSample, n float64) procDist {
	d := procDist{h: adaptivePriorSigma, priorM: math.Log(adaptivePriorProcFixed + adaptivePriorProcPerImage*n),
		priorW: adaptivePriorWeight}
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

// bandwidth is Silverman's rule of thumb, 0.9·min(sd, IQR/1.34)·N^(−1/5), for sorted log atoms; one atom
// gets the prior's width.
func bandwidth(sorted []float64) float64 {
	n := float64(len(sorted))
	if len(sorted) < 2 {
		return adaptivePriorSigma
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
	return max(0.9*spread*math.Pow(n, -0.2), adaptiveMinBandwidth)
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
	lx := math.Log(x)
	sum := d.priorW * normCDF((lx-d.priorM)/adaptivePriorSigma)
	// The atoms are sorted: those more than 8 widths below lx count fully, those 8 widths above not at all.
	lo, _ := slices.BinarySearch(d.logs, lx-8*d.h)
	hi, _ := slices.BinarySearch(d.logs, lx+8*d.h)
	sum += float64(lo)
	for _, l := range d.logs[lo:hi] {
		sum += normCDF((lx - l) / d.h)
	}
	return sum / (d.priorW + float64(len(d.logs)))
}

// upper bounds the distribution: beyond it less than about 0.1 % of the mass is left.
func (d procDist) upper() float64 {
	u := d.priorM + 3.1*adaptivePriorSigma
	if len(d.logs) > 0 {
		u = max(u, d.logs[len(d.logs)-1]+3.1*d.h)
	}
	return math.Exp(u)
}

func normCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// plan returns the poll times in seconds since the upload, for a trial at elapsed seconds after the upload.
// started ≥ 0 is the known queue wait (the request started that long after the upload); otherwise the queue
// wait is taken from its atoms, conditioned on exceeding queuedFor.
func (m *adaptiveModel) plan(queuedFor, started, elapsed float64) []float64 {
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
