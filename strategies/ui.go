package strategies

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// Base delays in milliseconds of the web UI's requests manager, by index (cvat-core/src/requests-manager.ts,
// API.md §10.3).
var (
	uiStartedDelaysMs = []int{3000, 7000, 13000}
	uiQueuedDelaysMs  = []int{7000, 13000, 19000, 29000, 41000, 53000, 67000, 79000, 101000, 113000, 139000,
		163000}
)

// uiJobsPageSize is the page size of the UI's job listing after creation (cvat-core server-proxy.ts).
const uiJobsPageSize = 500

// WebUI replicates the CVAT web UI waiting for a task creation (API.md §10.3):
//
//   - the first GET /api/requests/{rq_id} goes out at once; one index, starting at 0, serves both tables;
//   - after each answer the index is updated BEFORE the delay is chosen: "queued" → min(index+1, 11);
//     "started" → min(index+1, 2) if round(|progress − previous progress| × 100) < 25, else unchanged;
//   - delay = base[status][index] + floor(random() × floor(base/2)) ms, i.e. +0–50 % jitter;
//   - edge: a progress jump while the index is above 2 finds no started base value; JavaScript computes NaN
//     and setTimeout(NaN) fires after 0 ms, so the UI repolls at once;
//   - "finished" resolves, "failed" rejects with the server's message, a 404 after "queued" or "started" is a
//     cancellation (ErrCancelled);
//   - then GET /api/tasks/{id} and the jobs list with page_size=500&page=1, and further pages while "next" is
//     set.
//
// Not reproduced: the UI's GET /api/labels?task_id (not part of getting job IDs); its jobs filter is the JSON
// Logic form filter={"and":[{"==":[{"var":"task_id"},id]}]}, replaced by the equivalent task_id parameter
// (same rows, default -id order); and the cap of 5 status calls per delay window across all requests a
// browser tab watches (REQUESTS_COUNT), because every benchmark trial stands for its own tab. The random
// source is seeded per trial from (Params.Seed, task id).
type WebUI struct {
	newRand func(t Trial) func() float64
}

// NewWebUI returns the ui strategy with jitter seeded by seed.
func NewWebUI(seed int64) *WebUI {
	return &WebUI{newRand: func(t Trial) func() float64 { return trialRand(seed, t.TaskID).Float64 }}
}

// Name returns "ui".
func (*WebUI) Name() string { return "ui" }

// Wait polls the request like the UI, then reads the task and its jobs.
func (u *WebUI) Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error) {
	if t.RqID == "" {
		return Outcome{}, errors.New("no creation request id to poll")
	}
	random := u.newRand(t)
	var (
		last     *cvat.Request
		index    int
		previous float64 // progress of the previous answer; 0 before the first
		active   bool    // an answer was queued or started
	)
poll:
	for {
		rq, err := api.GetRequest(ctx, t.RqID)
		if err != nil {
			if active && errors.Is(err, cvat.ErrNotFound) {
				return Outcome{Request: last}, fmt.Errorf("get request %s: %w: %w", t.RqID, ErrCancelled, err)
			}
			if errors.Is(err, cvat.ErrNotFound) {
				return Outcome{Request: last}, fmt.Errorf("get request %s: %w: %w", t.RqID, ErrRequestExpired, err)
			}
			return Outcome{Request: last}, fmt.Errorf("get request %s: %w", t.RqID, err)
		}
		last = reqPtr(rq)
		var delay time.Duration
		switch rq.Status {
		case cvat.StatusFinished:
			break poll
		case cvat.StatusFailed:
			return Outcome{Request: last}, failed(rq, t.RqID)
		case cvat.StatusQueued, cvat.StatusStarted:
			active = true
			progress := 0.0
			if rq.Progress != nil {
				progress = *rq.Progress
			}
			index, delay = uiStep(rq.Status, index, progress, previous, random)
			previous = progress
		default:
			return Outcome{Request: last}, fmt.Errorf("get request %s: unknown status %q", t.RqID, rq.Status)
		}
		if err := sleep(ctx, clk, delay); err != nil {
			return Outcome{Request: last}, err
		}
	}
	if _, err := api.GetTask(ctx, t.TaskID); err != nil {
		return Outcome{Request: last}, fmt.Errorf("get task %d: %w", t.TaskID, err)
	}
	ids, err := listJobIDs(ctx, api, cvat.JobsQuery{TaskID: t.TaskID, Page: 1, PageSize: uiJobsPageSize})
	if err != nil {
		return Outcome{Request: last}, err
	}
	return finish(clk, ids, SignalRequestFinished, last)
}

// uiStep applies the UI's index rule and delay formula to one "queued" or "started" answer. random returns
// values in [0, 1), like Math.random.
func uiStep(status string, index int, progress, previous float64, random func() float64) (int, time.Duration) {
	var table []int
	switch status {
	case cvat.StatusQueued:
		index = min(index+1, len(uiQueuedDelaysMs)-1)
		table = uiQueuedDelaysMs
	case cvat.StatusStarted:
		if math.Round(math.Abs(progress-previous)*100) < 25 {
			index = min(index+1, len(uiStartedDelaysMs)-1)
		}
		table = uiStartedDelaysMs
	default:
		return index, 0
	}
	if index >= len(table) {
		return index, 0 // base undefined: NaN delay, setTimeout fires at once
	}
	base := table[index]
	ms := base + int(math.Floor(random()*math.Floor(float64(base)/2)))
	return index, time.Duration(ms) * time.Millisecond
}
