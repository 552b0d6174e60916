package strategies

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// Tuning of the adaptive strategy.
const (
	adaptiveWindow          = 256                     // most recent finished requests kept
	adaptiveFallbackInitial = 50 * time.Millisecond   // first pause of the backoff tail
	adaptiveFallbackFactor  = 1.5                     // growth of the tail
	adaptiveFallbackMax     = 1000 * time.Millisecond // cap of the tail
)

// adaptiveQuantiles are the predicted quantiles of the server time at which the request is polled.
var adaptiveQuantiles = []float64{0.50, 0.75, 0.90, 0.95, 0.99}

// Adaptive is our strategy: it learns online, across the trials of a run, how long the server takes to
// create a task, and polls GET /api/requests/{rq_id} when the request is likely to have finished instead of
// on a fixed schedule.
//
// Model. Every finished request seen gives one sample (n, T): n = max(Trial.Images, 1) and
// T = finished_date − created_date, both dates from the server clock, so T is queue wait plus processing
// (API.md §6.1) and needs no clock offset. Over the last 256 samples, T is fitted by least squares as
// f(n) = α + β·n (β = 0 when all samples have the same n or the slope comes out negative, i.e. f is the mean),
// and the multiplicative residuals r = T / f(n) are kept as an empirical distribution: the prediction for a
// trial with n images is quantile_q(r) × f(n). The linear term captures the per-image cost (headers read one
// by one, one job row per segment, API.md §9.9); the residual ratios carry the spread, which grows with the
// task size. Queue wait under concurrency is not modelled apart from T: it lands in the residuals.
//
// Schedule. Offsets are measured from Trial.UploadedAt (the local 202 of Upload-Finish; the server's
// created_date is a few milliseconds earlier, so the schedule errs late by the response latency). The request
// is polled at the predicted p50, p75, p90, p95 and p99 (targets already past are skipped), then on a short
// backoff tail of 50 ms × 1.5ⁿ capped at 1 s. With no history the first poll goes out at once, followed by
// the same tail. On "finished" one GET /api/jobs?task_id&page_size=all&sort=id returns every ID; "failed" is a
// *RequestFailedError; a 404 (expired) reads the jobs list on the tail schedule, like Backoff.
//
// Goal: fewer requests than poll (1–2 status calls once the model has data, instead of one call per
// interval) and a lower detection delay than backoff at p50 (half the trials are finished at the predicted
// p50, where backoff's pause has grown to about the elapsed time).
//
// Wait is safe for concurrent use: the samples are guarded by a mutex, and a trial plans its schedule from
// the samples available when it starts.
type Adaptive struct {
	mu      sync.Mutex
	samples []adaptiveSample // ring buffer of at most adaptiveWindow samples
	next    int              // ring position of the next sample once full
}

type adaptiveSample struct {
	n, seconds float64
}

// NewAdaptive returns the adaptive strategy with no history.
func NewAdaptive() *Adaptive { return &Adaptive{} }

// Name returns "adaptive".
func (*Adaptive) Name() string { return "adaptive" }

// Wait polls the request at the predicted quantiles, then lists the jobs once.
func (a *Adaptive) Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error) {
	start := t.UploadedAt
	if start.IsZero() {
		start = clk.Now()
	}
	plan := a.plan(t.Images)
	tail := adaptiveFallbackInitial
	pause := func() time.Duration {
		for len(plan) > 0 {
			at := start.Add(plan[0])
			plan = plan[1:]
			if d := at.Sub(clk.Now()); d > 0 {
				return d
			}
		}
		d := tail
		tail = min(time.Duration(float64(tail)*adaptiveFallbackFactor), adaptiveFallbackMax)
		return d
	}
	if len(plan) > 0 {
		// The first poll waits for the first predicted target still ahead; none ahead: poll at once.
		for len(plan) > 0 && !start.Add(plan[0]).After(clk.Now()) {
			plan = plan[1:]
		}
		if len(plan) > 0 {
			if err := sleep(ctx, clk, pause()); err != nil {
				return Outcome{}, err
			}
		}
	}
	last, err := pollUntilFinished(ctx, api, clk, t.RqID, func(cvat.Request) time.Duration { return pause() })
	switch {
	case errors.Is(err, cvat.ErrNotFound):
		return waitJobsAfterExpiry(ctx, api, clk, t.TaskID, last, pause)
	case err != nil:
		return Outcome{Request: last}, err
	}
	a.observe(t.Images, *last)
	ids, err := listJobIDs(ctx, api, allJobsQuery(t.TaskID))
	if err != nil {
		return Outcome{Request: last}, err
	}
	return finish(clk, ids, SignalRequestFinished, last)
}

// observe records the server time of a finished request.
func (a *Adaptive) observe(images int, rq cvat.Request) {
	if rq.FinishedDate == nil || rq.CreatedDate.IsZero() {
		return
	}
	d := rq.FinishedDate.Sub(rq.CreatedDate)
	if d <= 0 {
		return
	}
	s := adaptiveSample{n: float64(max(images, 1)), seconds: d.Seconds()}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.samples) < adaptiveWindow {
		a.samples = append(a.samples, s)
		return
	}
	a.samples[a.next] = s
	a.next = (a.next + 1) % adaptiveWindow
}

// plan returns the predicted quantile offsets (strictly increasing, since the upload) for a trial with the
// given image count, or nil without history.
func (a *Adaptive) plan(images int) []time.Duration {
	a.mu.Lock()
	samples := slices.Clone(a.samples)
	a.mu.Unlock()
	return predict(samples, float64(max(images, 1)), adaptiveQuantiles)
}

// predict fits the model of the Adaptive doc comment to samples and returns quantile_q(r) × f(n) per q,
// dropping values that do not increase.
func predict(samples []adaptiveSample, n float64, qs []float64) []time.Duration {
	if len(samples) == 0 {
		return nil
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

	ratios := make([]float64, len(samples))
	for i, s := range samples {
		ratios[i] = s.seconds / f(s.n)
	}
	slices.Sort(ratios)
	scale := f(n)
	out := make([]time.Duration, 0, len(qs))
	for _, q := range qs {
		d := time.Duration(quantile(ratios, q) * scale * float64(time.Second))
		if len(out) == 0 || d > out[len(out)-1] {
			out = append(out, d)
		}
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
