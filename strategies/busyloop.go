package strategies

import "context"

// BusyLoop is the loop of cvat-ai/cvat issue #9073: a client that calls get_jobs() right after creating a
// task finds no jobs (IndexError), so it lists the task's jobs again and again, with no pause, until the list
// is non-empty. CVAT commits every job in one transaction (API.md §9.3), so the first non-empty answer is the
// complete set. It bounds detection delay from below and request count from above.
type BusyLoop struct{}

// NewBusyLoop returns the busyloop strategy.
func NewBusyLoop() *BusyLoop { return &BusyLoop{} }

// Name returns "busyloop".
func (*BusyLoop) Name() string { return "busyloop" }

// Wait lists the jobs of t.TaskID (page_size=all, sort=id) until the answer is non-empty, checking ctx before
// every call.
func (*BusyLoop) Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error) {
	q := allJobsQuery(t.TaskID)
	for {
		if err := ctx.Err(); err != nil {
			return Outcome{}, err
		}
		ids, err := patientJobIDs(ctx, api, clk, q, noPause)
		if err != nil {
			return Outcome{}, err
		}
		if len(ids) > 0 {
			return Outcome{JobIDs: ids, SeenAt: clk.Now(), Signal: SignalJobsList}, nil
		}
	}
}
