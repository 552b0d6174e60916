package strategies

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// Batch waiting: a pipeline that creates many tasks at once into one project can wait for all of them with
// calls that cover the whole project instead of one wait per task.

// BatchAPI is what a project-level strategy calls: the per-task API and the requests list, which tells the
// failed creations of a project apart in one call.
type BatchAPI interface {
	API
	ListRequests(ctx context.Context, f cvat.RequestFilter) ([]cvat.Request, error)
}

// BatchStrategy waits for the jobs of every task of a batch created into one project. The caller sends each
// task on trials as soon as its upload returned, and closes trials when the batch's uploads are over (failed
// ones are never sent). WaitBatch calls done once per trial sent, by its Index, as soon as its jobs are known
// or it failed, and returns when trials is closed and every trial sent is done, or ctx ends (the trials
// left then are the caller's to fail). done may be called from several goroutines.
type BatchStrategy interface {
	Strategy
	WaitBatch(ctx context.Context, api BatchAPI, clk Clock, projectID int, trials <-chan IndexedTrial,
		done func(i int, out Outcome, err error))
}

// IndexedTrial is a trial of a batch with its index in the batch.
type IndexedTrial struct {
	Index int
	Trial
}

// BatchPreparer is a BatchStrategy with set-up per batch that must come before the batch's tasks exist
// (project-webhook's webhook). Its calls are the batch's.
type BatchPreparer interface {
	PrepareBatch(ctx context.Context, projectID int) error
}

// Signals of the project-level strategies.
const (
	SignalProjectList = "project-list" // the project's jobs listing showed the task's jobs
)

// ProjectPoll lists the jobs of the whole project every interval: GET /api/jobs?project_id&page_size=500&sort=id,
// following next links, and completes every waiting task that the listing shows jobs of (a task's jobs are
// committed together, so any of them means all, API.md §9.3). Every failCheckEvery-th round, when tasks are
// still waiting, one GET /api/requests?action=create&target=task&project_id&status=failed ends the failed
// ones: their jobs would never appear. Its requests are the batch's, not any one task's.
type ProjectPoll struct {
	interval time.Duration
}

// ProjectPageSize is the page size of ProjectPoll's listing: large enough that a 50-task batch of
// a few jobs each is one page, small enough that a page of a 1,000-task batch stays a few hundred KB.
const ProjectPageSize = 500

const failCheckEvery = 10

// NewProjectPoll returns the project-poll strategy; interval must be positive.
func NewProjectPoll(interval time.Duration) (*ProjectPoll, error) {
	if err := positive("project-poll interval", interval); err != nil {
		return nil, err
	}
	return &ProjectPoll{interval: interval}, nil
}

// Name returns "project-poll".
func (*ProjectPoll) Name() string { return "project-poll" }

// Wait is a batch of one: the task's project listed until the task's jobs appear.
func (p *ProjectPoll) Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error) {
	return waitOne(ctx, p, api, clk, t)
}

// WaitBatch lists the project from the first trial on until every trial is done.
func (p *ProjectPoll) WaitBatch(ctx context.Context, api BatchAPI, clk Clock, projectID int, trials <-chan IndexedTrial,
	done func(i int, out Outcome, err error)) {
	pending := map[int]int{} // task id -> trial index
	open := true
	for round := 1; ; round++ {
		open = receiveReady(trials, pending, open)
		if len(pending) == 0 {
			if !open {
				return
			}
			// Nothing to look for yet: wait for the next upload, not the interval.
			select {
			case t, ok := <-trials:
				if !ok {
					return
				}
				pending[t.TaskID] = t.Index
			case <-ctx.Done():
				return
			}
			continue
		}
		byTask, err := projectJobIDs(ctx, api, projectID)
		switch {
		case err == nil:
			now := clk.Now()
			for taskID, ids := range byTask {
				if i, ok := pending[taskID]; ok {
					done(i, Outcome{JobIDs: ids, SeenAt: now, Signal: SignalProjectList}, nil)
					delete(pending, taskID)
				}
			}
		case !Transient(err) || ctx.Err() != nil:
			failAll(pending, done, err)
			drainFailing(ctx, trials, done, err)
			return
		}
		if len(pending) > 0 && round%failCheckEvery == 0 {
			failedRequests(ctx, api, projectID, pending, done)
		}
		if len(pending) == 0 && !open {
			return
		}
		if err := sleep(ctx, clk, p.interval); err != nil {
			failAll(pending, done, err)
			return
		}
	}
}

// receiveReady moves the trials sent so far into pending without blocking; it returns whether trials is
// still open.
func receiveReady(trials <-chan IndexedTrial, pending map[int]int, open bool) bool {
	for open {
		select {
		case t, ok := <-trials:
			if !ok {
				return false
			}
			pending[t.TaskID] = t.Index
		default:
			return true
		}
	}
	return false
}

// drainFailing fails every trial still to come with err, until trials closes or ctx ends.
func drainFailing(ctx context.Context, trials <-chan IndexedTrial, done func(int, Outcome, error), err error) {
	for {
		select {
		case t, ok := <-trials:
			if !ok {
				return
			}
			done(t.Index, Outcome{}, err)
		case <-ctx.Done():
			return
		}
	}
}

// projectJobIDs lists every job of the project, ascending, and groups the IDs by task.
func projectJobIDs(ctx context.Context, api API, projectID int) (map[int][]int, error) {
	pg, err := api.ListJobs(ctx, cvat.JobsQuery{ProjectID: projectID, PageSize: ProjectPageSize, Sort: "id"})
	if err != nil {
		return nil, fmt.Errorf("list jobs of project %d: %w", projectID, err)
	}
	byTask := map[int][]int{}
	for {
		for _, j := range pg.Results {
			byTask[j.TaskID] = append(byTask[j.TaskID], j.ID)
		}
		if pg.Next == nil || *pg.Next == "" {
			break
		}
		if len(pg.Results) == 0 {
			return nil, fmt.Errorf("list jobs of project %d: empty page with a next link", projectID)
		}
		if pg, err = api.ListJobsPage(ctx, *pg.Next); err != nil {
			return nil, fmt.Errorf("list jobs of project %d: %w", projectID, err)
		}
	}
	for t, ids := range byTask {
		slices.Sort(ids)
		byTask[t] = slices.Compact(ids)
	}
	return byTask, nil
}

// failedRequests ends the pending trials whose creation request failed. A failure of this check is ignored:
// the next one, or the deadline, follows.
func failedRequests(ctx context.Context, api BatchAPI, projectID int, pending map[int]int, done func(int, Outcome, error)) {
	rqs, err := api.ListRequests(ctx, cvat.RequestFilter{Action: "create", Target: "task", ProjectID: projectID, Status: cvat.StatusFailed})
	if err != nil {
		return
	}
	for _, rq := range rqs {
		if rq.Operation.TaskID == nil {
			continue
		}
		if i, ok := pending[*rq.Operation.TaskID]; ok {
			done(i, Outcome{Request: reqPtr(rq)}, failed(rq, rq.ID))
			delete(pending, *rq.Operation.TaskID)
		}
	}
}

func failAll(pending map[int]int, done func(int, Outcome, error), err error) {
	for _, i := range pending {
		done(i, Outcome{}, err)
	}
	clear(pending)
}

// waitOne runs a batch strategy over one trial, for Strategy.Wait. Without a requests list (the API is not a
// BatchAPI) failures are found by the deadline only.
func waitOne(ctx context.Context, b BatchStrategy, api API, clk Clock, t Trial) (Outcome, error) {
	ba, ok := api.(BatchAPI)
	if !ok {
		ba = noRequests{api}
	}
	var (
		mu  sync.Mutex
		out Outcome
		err error = context.DeadlineExceeded
	)
	one := make(chan IndexedTrial, 1)
	one <- IndexedTrial{Trial: t}
	close(one)
	b.WaitBatch(ctx, ba, clk, t.ProjectID, one, func(_ int, o Outcome, e error) {
		mu.Lock()
		out, err = o, e
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	return out, err
}

type noRequests struct{ API }

func (noRequests) ListRequests(context.Context, cvat.RequestFilter) ([]cvat.Request, error) {
	return nil, fmt.Errorf("no requests list")
}
