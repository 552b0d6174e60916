package strategies

import (
	"context"
	"time"
)

// Polling lists the task's jobs at a fixed interval, the first call at once. The interval is the pause after
// each answer, like the loop of the SDK documentation (API.md §10.4), not a fixed-rate tick: a slow server is
// never asked twice at once.
type Polling struct {
	interval time.Duration
}

// NewPolling returns the poll strategy; interval must be positive.
func NewPolling(interval time.Duration) (*Polling, error) {
	if err := positive("poll interval", interval); err != nil {
		return nil, err
	}
	return &Polling{interval: interval}, nil
}

// Name returns "poll".
func (*Polling) Name() string { return "poll" }

// Wait lists the jobs of t.TaskID (page_size=all, sort=id) until the answer is non-empty, pausing the
// interval between calls.
func (p *Polling) Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error) {
	q := allJobsQuery(t.TaskID)
	for {
		ids, err := patientJobIDs(ctx, api, clk, q, func() time.Duration { return p.interval })
		if err != nil {
			return Outcome{}, err
		}
		if len(ids) > 0 {
			return Outcome{JobIDs: ids, SeenAt: clk.Now(), Signal: SignalJobsList}, nil
		}
		if err := sleep(ctx, clk, p.interval); err != nil {
			return Outcome{}, err
		}
	}
}
