package strategies_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

// projectFake is a project of tasks whose two jobs each appear at their task's visibility time, listed two
// jobs to a page; a task with failAt > 0 fails then instead.
type projectFake struct {
	clk     *fakeClock
	visible map[int]time.Duration // task id -> when its jobs appear
	failAt  map[int]time.Duration
	mu      sync.Mutex
	calls   []string
}

func (f *projectFake) log(what string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	at := f.clk.Now().Sub(t0)
	f.calls = append(f.calls, fmt.Sprintf("%s@%v", what, at))
	return at
}

func (f *projectFake) jobsAt(at time.Duration) []cvat.Job {
	var jobs []cvat.Job
	for _, id := range slices.Sorted(mapsKeys(f.visible)) {
		if at >= f.visible[id] {
			jobs = append(jobs, cvat.Job{ID: 10 * id, TaskID: id}, cvat.Job{ID: 10*id + 1, TaskID: id})
		}
	}
	return jobs
}

func (f *projectFake) page(jobs []cvat.Job, page int) cvat.JobPage {
	lo, hi := min(2*(page-1), len(jobs)), min(2*page, len(jobs))
	p := cvat.JobPage{Count: len(jobs), Results: jobs[lo:hi]}
	if hi < len(jobs) {
		next := "http://fake/api/jobs?project_id=7&page=" + strconv.Itoa(page+1)
		p.Next = &next
	}
	return p
}

func (f *projectFake) ListJobs(_ context.Context, q cvat.JobsQuery) (cvat.JobPage, error) {
	if q.ProjectID != 7 || q.TaskID != 0 || q.Sort != "id" || q.PageSize != strategies.ProjectPageSize {
		return cvat.JobPage{}, fmt.Errorf("unexpected query %+v", q)
	}
	return f.page(f.jobsAt(f.log("jobs")), 1), nil
}

func (f *projectFake) ListJobsPage(_ context.Context, next string) (cvat.JobPage, error) {
	page, _ := strconv.Atoi(next[strings.LastIndex(next, "=")+1:])
	return f.page(f.jobsAt(f.log("jobs-page")), page), nil
}

func (f *projectFake) ListRequests(_ context.Context, flt cvat.RequestFilter) ([]cvat.Request, error) {
	at := f.log("failed-requests")
	if flt.ProjectID != 7 || flt.Status != "failed" || flt.Action != "create" || flt.Target != "task" {
		return nil, fmt.Errorf("unexpected filter %+v", flt)
	}
	var out []cvat.Request
	for id, when := range f.failAt {
		if at >= when {
			tid := id
			out = append(out, cvat.Request{ID: "rq-" + strconv.Itoa(id), Status: "failed", Message: "boom",
				Operation: cvat.RequestOperation{TaskID: &tid}})
		}
	}
	return out, nil
}

func (f *projectFake) GetRequest(context.Context, string) (cvat.Request, error) {
	return cvat.Request{}, fmt.Errorf("project-poll must not read requests one by one")
}

func (f *projectFake) GetTask(context.Context, int) (cvat.Task, error) {
	return cvat.Task{}, fmt.Errorf("project-poll must not read tasks")
}

func mapsKeys(m map[int]time.Duration) func(func(int) bool) {
	return func(yield func(int) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// project-poll lists the whole project, every page, once per interval; each task completes at the first
// listing that shows its jobs, a failed one at the failed-requests check of every tenth round, and the wait
// ends when the last task sent is done.
func TestProjectPoll(t *testing.T) {
	clk := newAutoClock()
	f := &projectFake{clk: clk, visible: map[int]time.Duration{1: 150 * ms, 2: 350 * ms, 3: time.Hour}, failAt: map[int]time.Duration{3: 500 * ms}}
	s, err := strategies.New("project-poll:interval=100ms", strategies.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	trials := make(chan strategies.IndexedTrial, 3)
	for i, id := range []int{1, 2, 3} {
		trials <- strategies.IndexedTrial{Index: i, Trial: strategies.Trial{TaskID: id, ProjectID: 7}}
	}
	close(trials)
	type res struct {
		out strategies.Outcome
		err error
	}
	got := map[int]res{}
	var mu sync.Mutex
	s.(strategies.BatchStrategy).WaitBatch(t.Context(), f, clk, 7, trials, func(i int, o strategies.Outcome, err error) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := got[i]; dup {
			t.Errorf("trial %d done twice", i)
		}
		got[i] = res{o, err}
	})
	if r := got[0]; r.err != nil || !slices.Equal(r.out.JobIDs, []int{10, 11}) || r.out.SeenAt.Sub(t0) != 200*ms || r.out.Signal != "project-list" {
		t.Errorf("task 1: %+v", r)
	}
	if r := got[1]; r.err != nil || !slices.Equal(r.out.JobIDs, []int{20, 21}) || r.out.SeenAt.Sub(t0) != 400*ms {
		t.Errorf("task 2: %+v", r)
	}
	if r := got[2]; strategies.Classify(r.err) != strategies.ClassRequestFailed {
		t.Errorf("task 3: %+v", r)
	}
	// Rounds at 0, 100, ..., 900 ms; pages: one until task 1 shows, two with both tasks' four jobs.
	var jobs, pages, checks int
	for _, c := range f.calls {
		switch {
		case strings.HasPrefix(c, "jobs-page"):
			pages++
		case strings.HasPrefix(c, "jobs@"):
			jobs++
		case strings.HasPrefix(c, "failed-requests"):
			checks++
			if c != "failed-requests@900ms" {
				t.Errorf("failed-requests check at %s, want the tenth round's, 900ms", c)
			}
		}
	}
	if jobs != 10 || pages != 6 || checks != 1 {
		t.Errorf("%d listings, %d next pages, %d failure checks: %v", jobs, pages, checks, f.calls)
	}
}
