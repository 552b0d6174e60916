package strategies

import (
	"context"
	"errors"
	"fmt"
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

	// The kernel width in log space is at least adaptiveMinBandwidth and at least adaptiveSmallSample/√n for n
	// samples: a few samples say little about the spread, so the plan stays broad until the data agree.
	adaptiveMinBandwidth = 0.03
	adaptiveSmallSample  = 0.3

	// Without a plan (no data yet, or beyond the prediction) a poll follows the last one after
	// max(adaptiveTailMin, adaptiveTailShare × time since the upload), capped at adaptiveTailMax: scale-free,
	// so a server of any speed is found within 20 % of the time it took, without a prior of its speed.
	adaptiveTailMin   = 25 * time.Millisecond
	adaptiveTailShare = 0.2
	adaptiveTailMax   = 2 * time.Second

	// Status reads are skipped when the queue is short next to the processing: its 90th percentile under
	// adaptiveSkipQueueShare of the median processing, over at least adaptiveSkipMinSamples waits. Every
	// adaptiveRefreshEvery-th trial reads the status anyway, so a queue that grows is noticed.
	adaptiveSkipQueueShare = 0.25
	adaptiveSkipMinSamples = 3
	adaptiveRefreshEvery   = 8
)

// Adaptive is our strategy: it learns online, across the trials of a run, how long the server queues and
// processes a task creation, and polls when the jobs are likely to have appeared instead of on a fixed
// schedule. It assumes nothing about the server's speed.
//
// Model. The time from the upload's 202 until the jobs are visible is V = Q + P (API.md §6.1, §9.3):
//   - Q, the queue wait, = started_date − created_date of the creation request (server clock, so no clock
//     offset is needed), kept as an empirical distribution of the last 256 waits.
//   - P, the processing, = visible − started_date. visible is the midpoint between the last evidence that the
//     jobs were not visible (the send of an empty listing, or of the status read that said started) and the
//     first listing with jobs, mapped to the server clock through created_date ≈ the upload's 202, the same
//     mapping the plan uses, so its error cancels; a creation first seen finished gives finished − started.
//     The jobs' own created_date is not used: CVAT stamps each row when it is inserted, 0.1–0.5 s before the
//     commit makes them visible (CALIBRATION §5.3); learning from it made an earlier version plan its polls
//     after commits that had not happened yet. P grows with the task: over the last 256 samples (n = images,
//     P) it is fitted as f(n) = α + β·n by least squares (β ≥ 0), and the ratios P/f(n) give, for a trial of
//     n images, atoms ratio × f(n). The predictive distribution is a log-normal kernel mixture over those
//     atoms, of width Silverman's bandwidth in log space but at least max(0.03, 0.3/√n): a few samples keep
//     the plan broad.
//
// Schedule. Given the distribution F of V conditioned on what is known (V > now, and Q > elapsed while the
// request is queued, or Q exactly once it started), the poll times minimise E[detection delay] +
// c·E[requests], c = 20 ms, by dynamic programming over a grid of 400 steps (≥ 5 ms, polls ≥ 25 ms apart); a
// poll at t costs c only if V > the previous poll. The optimum polls densely where the hazard f/(1−F) is
// high, about √(2c / hazard) apart, and sparsely before and in the tail. Without data, and beyond the
// prediction's ~99.9 % bound, the scale-free tail polls max(25 ms, 20 % of the time since the upload) after
// the last poll, capped at 2 s, every other tail poll reading the request so that a failure is seen.
//
// Endpoints. When the queue waits seen are short next to the processing (90th percentile under a quarter of
// the median), the status is not read at all: the listings follow the plan over Q's atoms, and only if that
// plan runs out without jobs (this creation queued longer than the others) does the strategy read the
// request. Every eighth trial reads it anyway, so that a growing queue is learnt. Otherwise polls read GET
// /api/requests/{rq_id} until it says started (re-planned after every answer), then GET
// /api/jobs?task_id&page_size=all&sort=id: jobs appear all at once at the commit (§9.3), so a non-empty list
// is complete. "finished" in a status answer ends with one listing; "failed" is a *RequestFailedError; a 404
// (expired) reads the jobs list on the tail schedule.
//
// Wait is safe for concurrent use: the samples are guarded by a mutex, and every plan works on a snapshot.
type Adaptive struct {
	mu     sync.Mutex
	queue  adaptiveRing[float64]        // queue waits Q, seconds
	proc   adaptiveRing[adaptiveSample] // processing times P with the task size
	trials int                          // Waits begun: every adaptiveRefreshEvery-th reads the status
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

// NewAdaptive returns the adaptive strategy with no history.
func NewAdaptive() *Adaptive { return &Adaptive{} }

// Name returns "adaptive".
func (*Adaptive) Name() string { return "adaptive" }

// Wait polls the request until it started (unless the queue is known to be short), then the jobs list, at
// the times of the plan.
func (a *Adaptive) Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error) {
	if t.RqID == "" {
		return Outcome{}, errors.New("no creation request id to poll")
	}
	origin := t.UploadedAt
	if origin.IsZero() {
		origin = clk.Now()
	}
	w := &adaptiveWait{a: a, api: api, clk: clk, t: t, origin: origin, started: -1}
	m, readStatus := a.begin(t.Images)
	w.m = m
	if !readStatus {
		// The queue has been short: plan the listings from its atoms and read no status, unless the plan
		// runs out with no jobs, which says this creation is not like the others.
		out, done, err := w.listJobs(ctx, true)
		if done || err != nil {
			return out, err
		}
	}
	out, done, err := w.statusPhase(ctx)
	if done || err != nil {
		return out, err
	}
	out, _, err = w.listJobs(ctx, false)
	return out, err
}

// adaptiveWait is one Wait in progress.
type adaptiveWait struct {
	a         *Adaptive
	api       API
	clk       Clock
	t         Trial
	m         *adaptiveModel
	origin    time.Time
	last      *cvat.Request
	started   float64 // the request started this long after the upload; < 0: unknown
	notBefore float64 // the jobs were not visible this long after the upload (an empty answer's send)
}

func (w *adaptiveWait) since() float64 { return w.clk.Now().Sub(w.origin).Seconds() }

// statusPhase reads the request on the plan for what is known until it reads started (done false), or
// finished, failed or expired (done true).
func (w *adaptiveWait) statusPhase(ctx context.Context) (Outcome, bool, error) {
	queuedFor := 0.0 // the request was seen queued this long after the upload
	for {
		plan := w.m.plan(queuedFor, -1, w.since())
		if err := sleep(ctx, w.clk, adaptivePause(w.clk, w.origin, plan)); err != nil {
			return Outcome{Request: w.last}, true, err
		}
		sent := w.since()
		rq, err := w.api.GetRequest(ctx, w.t.RqID)
		if errors.Is(err, cvat.ErrNotFound) {
			out, err := waitJobsAfterExpiry(ctx, w.api, w.clk, w.t.TaskID, w.last, func() time.Duration { return adaptiveTail(w.since()) })
			return out, true, err
		}
		if err != nil {
			return Outcome{Request: w.last}, true, fmt.Errorf("get request %s: %w", w.t.RqID, err)
		}
		w.last = reqPtr(rq)
		switch rq.Status {
		case cvat.StatusStarted:
			w.notBefore = sent // started, not finished: the commit was still ahead when the server read it
			if rq.StartedDate != nil && !rq.CreatedDate.IsZero() {
				w.started = max(rq.StartedDate.Sub(rq.CreatedDate).Seconds(), 0)
				w.a.observeQueue(w.started)
			} else { // no dates: the request started by the time of this answer
				w.started = w.since()
			}
			return Outcome{}, false, nil
		case cvat.StatusFailed, cvat.StatusFinished:
			out, err := w.ended(ctx, rq)
			return out, true, err
		}
		queuedFor = w.since() // queued (or an unknown state): the start is still ahead
	}
}

// listJobs lists the jobs on the plan from the start when it is known, else from the queue's atoms, until
// they appear. With untilPlanEnds it gives up (done false) when the plan has no time left, so the caller can
// ask the request why.
func (w *adaptiveWait) listJobs(ctx context.Context, untilPlanEnds bool) (Outcome, bool, error) {
	plan := w.m.plan(0, w.started, w.since())
	tailPolls := 0
	for {
		inTail := !planAhead(w.clk, w.origin, plan)
		if untilPlanEnds && inTail {
			return Outcome{}, false, nil
		}
		if err := sleep(ctx, w.clk, adaptivePause(w.clk, w.origin, plan)); err != nil {
			return Outcome{Request: w.last}, true, err
		}
		if inTail {
			// Past the plan every other poll reads the request: only it says that the creation failed.
			tailPolls++
			if tailPolls%2 == 0 {
				if out, done, err := w.checkRequest(ctx); done || err != nil {
					return out, true, err
				}
				continue
			}
		}
		sent := w.since()
		ids, err := listJobIDs(ctx, w.api, allJobsQuery(w.t.TaskID))
		if err != nil && Transient(err) && ctx.Err() == nil {
			continue // a missed listing: the plan's next step follows
		}
		if err != nil {
			return Outcome{Request: w.last}, true, err
		}
		if len(ids) == 0 {
			w.notBefore = sent
			continue
		}
		// The commit fell between the last evidence of no jobs and this answer: learn its midpoint. The job
		// rows' created_date is no use: CVAT stamps them when each is inserted, 0.1–0.5 s before the commit
		// makes them visible (CALIBRATION §5.3).
		w.a.observeVisible(w.t.Images, w.started, (w.notBefore+w.since())/2)
		return Outcome{JobIDs: ids, SeenAt: w.clk.Now(), Signal: SignalJobsList, Request: w.last}, true, nil
	}
}

// checkRequest reads the request once in the jobs phase: failed is an error, finished ends with the jobs
// list, anything else goes on (done false).
func (w *adaptiveWait) checkRequest(ctx context.Context) (Outcome, bool, error) {
	rq, err := w.api.GetRequest(ctx, w.t.RqID)
	switch {
	case errors.Is(err, cvat.ErrNotFound):
		return Outcome{}, false, nil // expired: the listings carry on
	case err != nil:
		return Outcome{Request: w.last}, true, fmt.Errorf("get request %s: %w", w.t.RqID, err)
	}
	w.last = reqPtr(rq)
	if rq.Status == cvat.StatusFailed || rq.Status == cvat.StatusFinished {
		out, err := w.ended(ctx, rq)
		return out, true, err
	}
	return Outcome{}, false, nil
}

// ended ends the wait on a request that failed (its error) or finished (one listing).
func (w *adaptiveWait) ended(ctx context.Context, rq cvat.Request) (Outcome, error) {
	if rq.Status == cvat.StatusFailed {
		return Outcome{Request: w.last}, failed(rq, w.t.RqID)
	}
	ids, err := patientJobIDs(ctx, w.api, w.clk, allJobsQuery(w.t.TaskID), noPause)
	if err != nil {
		return Outcome{Request: w.last}, err
	}
	w.a.observeFinished(w.t.Images, rq)
	return finish(w.clk, ids, SignalRequestFinished, w.last)
}

// planAhead reports whether plan has a time still ahead.
func planAhead(clk Clock, origin time.Time, plan []float64) bool {
	return len(plan) > 0 && origin.Add(fromSeconds(plan[len(plan)-1])).After(clk.Now())
}

// adaptiveTail is the pause after the plan, or without one: max(25 ms, 20 % of the time since the upload),
// capped at 2 s.
func adaptiveTail(sinceUpload float64) time.Duration {
	return min(max(adaptiveTailMin, fromSeconds(adaptiveTailShare*sinceUpload)), adaptiveTailMax)
}

// adaptivePause returns the pause until the first planned time (seconds since origin) still ahead, or the
// tail's pause when none is left. It is never below adaptiveMinPause, so no loop polls back to back.
func adaptivePause(clk Clock, origin time.Time, plan []float64) time.Duration {
	now := clk.Now()
	for _, at := range plan {
		if d := origin.Add(fromSeconds(at)).Sub(now); d > 0 {
			return max(d, adaptiveMinPause)
		}
	}
	return adaptiveTail(now.Sub(origin).Seconds())
}

func fromSeconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// observeQueue records one queue wait.
func (a *Adaptive) observeQueue(q float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue.add(q)
}

// observeVisible records the processing time of a creation whose jobs became visible visible seconds after
// the upload: from its start when known, else from the median queue wait (a trial that skipped the status).
// Server dates map to the upload's clock through created_date ≈ the upload's 202, the same mapping the plan
// uses, so its error cancels.
func (a *Adaptive) observeVisible(images int, started, visible float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if started < 0 {
		started = 0
		if len(a.queue.vals) > 0 {
			q := slices.Clone(a.queue.vals)
			slices.Sort(q)
			started = quantile(q, 0.5)
		}
	}
	a.proc.add(adaptiveSample{n: float64(max(images, 1)), seconds: max(visible-started, adaptiveMinStep)})
}

// observeFinished records a creation first seen finished: its queue wait and, as its processing, started →
// finished (the commit is at most a few tens of ms before finished_date, CALIBRATION §5.3).
func (a *Adaptive) observeFinished(images int, rq cvat.Request) {
	if rq.StartedDate == nil || rq.FinishedDate == nil || rq.CreatedDate.IsZero() {
		return
	}
	p := rq.FinishedDate.Sub(*rq.StartedDate).Seconds()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue.add(max(rq.StartedDate.Sub(rq.CreatedDate).Seconds(), 0))
	if p > 0 {
		a.proc.add(adaptiveSample{n: float64(max(images, 1)), seconds: p})
	}
}

// begin counts a trial and returns its prediction from a snapshot of the samples, and whether it reads the
// request status: yes, unless the queue has been short next to the processing (and this is not a refresh).
func (a *Adaptive) begin(images int) (*adaptiveModel, bool) {
	m := a.model(images)
	a.mu.Lock()
	a.trials++
	refresh := a.trials%adaptiveRefreshEvery == 0
	a.mu.Unlock()
	return m, refresh || !m.shortQueue()
}

// model returns the prediction for a trial of the given size from a snapshot of the samples.
func (a *Adaptive) model(images int) *adaptiveModel {
	a.mu.Lock()
	queue := slices.Clone(a.queue.vals)
	proc := slices.Clone(a.proc.vals)
	a.mu.Unlock()
	return newAdaptiveModel(queue, proc, float64(max(images, 1)))
}
