package strategies

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// WhatIfPreallocJobs is the emulator what-if the prealloc strategy needs (cvatsim.WhatIfPreallocJobs).
const WhatIfPreallocJobs = "prealloc-jobs"

// Prealloc is the client of a server that pre-allocates a task's job rows when it accepts the data, the
// fourth approach of the cvat-ai/cvat#9073 write-up. No CVAT release does this: it runs only against the
// embedded emulator's what-if (cvatsim.WhatIf.PreallocJobs). It lists the jobs once right after the upload's
// 202 (the IDs: its SeenAt), then waits for the commit that fills the rows in, as cheaply as it can: the
// request status with the backoff schedule of Params (the listing is complete already, so no further
// listing). A failed creation is an error, as the rows are rolled back.
type Prealloc struct {
	backoff *Backoff
}

// ErrNotPreallocated is a jobs listing that came back empty right after the upload: the server does not
// pre-allocate job IDs.
var ErrNotPreallocated = errors.New("no job listed right after the upload: the server does not pre-allocate job IDs " +
	"(only the emulator's what-if " + WhatIfPreallocJobs + " does)")

// NewPrealloc returns the prealloc strategy; its status reads follow p's backoff parameters.
func NewPrealloc(p Params) (*Prealloc, error) {
	b, err := NewBackoff(p)
	if err != nil {
		return nil, err
	}
	return &Prealloc{backoff: b}, nil
}

// Name returns "prealloc".
func (*Prealloc) Name() string { return "prealloc" }

// Wait lists the pre-allocated jobs, then waits for the request to finish.
func (p *Prealloc) Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error) {
	pause := p.backoff.schedule(trialRand(p.backoff.seed, t.TaskID))
	ids, err := patientJobIDs(ctx, api, clk, allJobsQuery(t.TaskID), pause)
	if err != nil {
		return Outcome{}, err
	}
	if len(ids) == 0 {
		return Outcome{}, ErrNotPreallocated
	}
	seen := clk.Now()
	last, err := pollRequest(ctx, api, clk, t.RqID, func(cvat.Request) time.Duration { return pause() }, pause)
	switch {
	case errors.Is(err, cvat.ErrNotFound):
		// Expired after finishing (the creation took over 500 s, or the expire fault): the rows were kept,
		// or the listing would be empty now.
		if ids2, lerr := patientJobIDs(ctx, api, clk, allJobsQuery(t.TaskID), pause); lerr != nil || len(ids2) == 0 {
			return Outcome{Request: last}, fmt.Errorf("request gone and no jobs listed: %w", errors.Join(err, lerr))
		}
	case err != nil:
		return Outcome{Request: last}, err
	}
	return Outcome{JobIDs: ids, SeenAt: seen, Signal: SignalPreallocated, Request: last}, nil
}
