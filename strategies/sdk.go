package strategies

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// SDK replicates cvat-sdk 2.73.0 create_from_data followed by get_jobs() (API.md §10.1, §10.5 steps 6–9), and
// with the name "cli" the cvat-cli 2.73.0 task create loop (§10.2):
//
//  6. GET /api/requests/{rq_id} at once, then again after each fixed period until "finished". "failed" ends
//     with the server's message (BackgroundRequestException); "queued" and "started" continue; a 404 (expired
//     or unknown id) is an error, as the SDK raises ApiException. No backoff, no jitter, no attempt limit.
//  7. GET /api/tasks/{id}: the re-read at the end of upload_data.
//  8. GET /api/tasks/{id}: the re-read at the end of create_from_data.
//  9. GET /api/jobs?task_id={id}&page=1 at the server's default page size (10), then every "next" page.
//
// The SDK's 502/503/504 retries belong to the transport (urllib3); here they are cvat.Client's RetryPolicy.
type SDK struct {
	name   string
	period time.Duration
}

// NewSDK returns the sdk strategy with the SDK's status_check_period (DefaultSDKPeriod is its 5 s default).
func NewSDK(period time.Duration) (*SDK, error) {
	if err := positive("sdk period", period); err != nil {
		return nil, err
	}
	return &SDK{name: "sdk", period: period}, nil
}

// NewCLI returns the cli strategy: the SDK loop with cvat-cli's --completion_verification_period (default
// 2 s). cvat-cli itself stops after the two task re-reads and never prints job IDs (API.md §10.2); since every
// strategy here must end with the job IDs, the cli strategy adds the SDK's get_jobs listing (step 9), which a
// script would run next.
func NewCLI(period time.Duration) (*SDK, error) {
	if err := positive("cli period", period); err != nil {
		return nil, err
	}
	return &SDK{name: "cli", period: period}, nil
}

// Name returns "sdk" or "cli".
func (s *SDK) Name() string { return s.name }

// Wait runs steps 6–9 for t.
func (s *SDK) Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error) {
	last, err := pollUntilFinished(ctx, api, clk, t.RqID, func(cvat.Request) time.Duration { return s.period })
	if err != nil {
		return Outcome{Request: last}, err
	}
	for range 2 { // steps 7 and 8
		if _, err := api.GetTask(ctx, t.TaskID); err != nil {
			return Outcome{Request: last}, fmt.Errorf("get task %d: %w", t.TaskID, err)
		}
	}
	ids, err := listJobIDs(ctx, api, cvat.JobsQuery{TaskID: t.TaskID, Page: 1})
	if err != nil {
		return Outcome{Request: last}, err
	}
	return finish(clk, ids, SignalRequestFinished, last)
}

// pollUntilFinished polls GET /api/requests/{rqID} at once and then after next(answer) until the request is
// finished. It returns the last request seen, a *RequestFailedError for "failed", and any API error as is.
func pollUntilFinished(ctx context.Context, api API, clk Clock, rqID string,
	next func(cvat.Request) time.Duration) (*cvat.Request, error) {
	return pollRequest(ctx, api, clk, rqID, next, nil)
}

// pollRequest is pollUntilFinished; when onTransient is not nil, a transient failure of the status read
// (Transient: no answer, 429, 502-504, after the client's own retries) is not the end of the wait but one
// more step, paused by onTransient.
func pollRequest(ctx context.Context, api API, clk Clock, rqID string,
	next func(cvat.Request) time.Duration, onTransient func() time.Duration) (*cvat.Request, error) {
	if rqID == "" {
		return nil, errors.New("no creation request id to poll")
	}
	var last *cvat.Request
	for {
		rq, err := api.GetRequest(ctx, rqID)
		if errors.Is(err, cvat.ErrNotFound) {
			return last, fmt.Errorf("get request %s: %w: %w", rqID, ErrRequestExpired, err)
		}
		if err != nil && onTransient != nil && Transient(err) && ctx.Err() == nil {
			if err := sleep(ctx, clk, onTransient()); err != nil {
				return last, err
			}
			continue
		}
		if err != nil {
			return last, fmt.Errorf("get request %s: %w", rqID, err)
		}
		last = reqPtr(rq)
		switch rq.Status {
		case cvat.StatusFinished:
			return last, nil
		case cvat.StatusFailed:
			return last, failed(rq, rqID)
		}
		if err := sleep(ctx, clk, next(rq)); err != nil {
			return last, err
		}
	}
}
