package strategies

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// Backoff polls GET /api/requests/{rq_id} with exponential backoff: at once, then after pauses
// Initial, Initial×Factor, Initial×Factor², ... capped at Max, each multiplied by a uniform factor in
// [1−Jitter, 1+Jitter] ("proportional ±20 %" jitter with the default 0.2; neither AWS "full jitter", which
// draws from [0, d], nor "decorrelated jitter", which derives each pause from the previous drawn one). The
// schedule itself is not jittered, so the pauses stay centred on the exponential curve and the cap holds
// within ±Jitter. The random source is seeded per trial from (Params.Seed, task id).
//
// A transient failure of a status read (no answer, 429, 502-504, after the client's own retries) is one more
// step of the schedule. On "finished" one GET /api/jobs?task_id&page_size=all&sort=id returns every ID. A 404 means the request
// expired (500 s after finishing, API.md §6.1) or is unknown: the jobs are read directly, and if there are
// none yet the backoff continues on the jobs list ("request-expired" once they appear).
type Backoff struct {
	initial, max   time.Duration
	factor, jitter float64
	seed           int64
}

// NewBackoff returns the backoff strategy from p.BackoffInitial, BackoffMax, BackoffFactor, BackoffJitter and
// Seed, reporting every invalid value.
func NewBackoff(p Params) (*Backoff, error) {
	var errs []error
	if err := positive("backoff initial", p.BackoffInitial); err != nil {
		errs = append(errs, err)
	}
	if p.BackoffMax < p.BackoffInitial {
		errs = append(errs, fmt.Errorf("backoff max %v is below backoff initial %v", p.BackoffMax, p.BackoffInitial))
	}
	if !(p.BackoffFactor >= 1) { // also rejects NaN
		errs = append(errs, fmt.Errorf("backoff factor must be at least 1, got %v", p.BackoffFactor))
	}
	if !(p.BackoffJitter >= 0 && p.BackoffJitter < 1) {
		errs = append(errs, fmt.Errorf("backoff jitter must be in [0, 1), got %v", p.BackoffJitter))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Backoff{initial: p.BackoffInitial, max: p.BackoffMax, factor: p.BackoffFactor,
		jitter: p.BackoffJitter, seed: p.Seed}, nil
}

// Name returns "backoff".
func (*Backoff) Name() string { return "backoff" }

// Wait polls the request with backoff, then lists the jobs once.
func (b *Backoff) Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error) {
	pause := b.schedule(trialRand(b.seed, t.TaskID))
	// A transient failure of the requests API (a 503 of a restarting redis, a dropped connection) is what a
	// backoff is for: it is one more step of the schedule, not the end of the wait.
	last, err := pollRequest(ctx, api, clk, t.RqID, func(cvat.Request) time.Duration { return pause() }, pause)
	switch {
	case errors.Is(err, cvat.ErrNotFound):
		return waitJobsAfterExpiry(ctx, api, clk, t.TaskID, last, pause)
	case err != nil:
		return Outcome{Request: last}, err
	}
	ids, err := patientJobIDs(ctx, api, clk, allJobsQuery(t.TaskID), pause)
	if err != nil {
		return Outcome{Request: last}, err
	}
	return finish(clk, ids, SignalRequestFinished, last)
}

// schedule returns the generator of successive jittered pauses.
func (b *Backoff) schedule(rnd *rand.Rand) func() time.Duration {
	next := b.initial
	return func() time.Duration {
		d := jittered(next, b.jitter, rnd.Float64())
		next = min(time.Duration(float64(next)*b.factor), b.max)
		return d
	}
}

// jittered scales d by 1 + j×(2u − 1), u uniform in [0, 1).
func jittered(d time.Duration, j, u float64) time.Duration {
	return time.Duration(float64(d) * (1 + j*(2*u-1)))
}

// waitJobsAfterExpiry handles a 404 of the request: the request is gone, so the jobs list is the only
// evidence left. It lists the jobs now and then after each pause() until some exist.
func waitJobsAfterExpiry(ctx context.Context, api API, clk Clock, taskID int, last *cvat.Request,
	pause func() time.Duration) (Outcome, error) {
	for {
		ids, err := patientJobIDs(ctx, api, clk, allJobsQuery(taskID), pause)
		if err != nil {
			return Outcome{Request: last}, err
		}
		if len(ids) > 0 {
			return Outcome{JobIDs: ids, SeenAt: clk.Now(), Signal: SignalRequestExpired, Request: last}, nil
		}
		if err := sleep(ctx, clk, pause()); err != nil {
			return Outcome{Request: last}, err
		}
	}
}
