package strategies_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// t0 is the fake time at which every scenario's upload returned.
var t0 = time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC)

// fakeClock is a Clock for tests. In auto mode After advances Now by d and fires at once, so a 5 s period
// costs nothing; in manual mode timers fire only on Advance, and every After call is announced on armed.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	auto   bool
	sleeps []time.Duration
	timers []fakeTimer
	armed  chan time.Duration
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newAutoClock() *fakeClock { return &fakeClock{now: t0, auto: true} }

func newManualClock() *fakeClock {
	return &fakeClock{now: t0, armed: make(chan time.Duration, 64)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	ch := make(chan time.Time, 1)
	if c.auto {
		c.now = c.now.Add(max(d, 0))
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	select {
	case c.armed <- d:
	default:
	}
	return ch
}

// advance moves the clock by d (both modes) and fires due timers.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
}

func (c *fakeClock) sleepLog() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

// fakeAPI is a scripted CVAT: the creation request of task 42 is queued until startedAt, started until
// finishedAt, then finished (or failed when failMsg is set); the jobs become visible at visibleAt (≤
// finishedAt in real CVAT) unless the creation failed. Every call costs latency on the clock and is logged
// as "what@offset" with the offset since t0.
type fakeAPI struct {
	t        testing.TB
	clk      *fakeClock
	latency  time.Duration
	maxCalls int // guard against runaway loops; 0: 100000

	taskID     int
	rqID       string
	startedAt  time.Duration
	visibleAt  time.Duration
	finishedAt time.Duration
	expireAt   time.Duration // > 0: GetRequest answers 404 from then on
	failMsg    string
	jobs       int // job ids 101..100+jobs
	progress   func(call int) float64
	statuses   []string // if set: the status of each GetRequest call in turn, the last one repeating
	getTaskErr error
	onCall     func(n int)          // called with the call count after each call
	rqFault    func(call int) error // if set: GetRequest call number call (0-based) fails with what it returns
	jobsFault  func(call int) error // the same for ListJobs
	jobsCalls  int

	mu    sync.Mutex
	calls []string
	n     int
	rq    int
}

func newFakeAPI(t testing.TB, clk *fakeClock) *fakeAPI {
	return &fakeAPI{t: t, clk: clk, taskID: 42, rqID: "action=create&target=task&target_id=42", jobs: 2}
}

func (f *fakeAPI) begin(what string) (time.Duration, error) {
	if f.latency > 0 {
		f.clk.advance(f.latency)
	}
	f.mu.Lock()
	at := f.clk.Now().Sub(t0)
	f.calls = append(f.calls, fmt.Sprintf("%s@%v", what, at))
	f.n++
	n := f.n
	limit := f.maxCalls
	if limit == 0 {
		limit = 100000
	}
	f.mu.Unlock()
	if f.onCall != nil {
		f.onCall(n)
	}
	if n > limit {
		return at, fmt.Errorf("fake api: more than %d calls", limit)
	}
	return at, nil
}

func (f *fakeAPI) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeAPI) GetRequest(ctx context.Context, rqID string) (cvat.Request, error) {
	at, err := f.begin("rq")
	if err != nil {
		return cvat.Request{}, err
	}
	if err := ctx.Err(); err != nil {
		return cvat.Request{}, err
	}
	if rqID != f.rqID {
		f.t.Errorf("GetRequest(%q), want %q", rqID, f.rqID)
	}
	if f.expireAt > 0 && at >= f.expireAt {
		return cvat.Request{}, &cvat.APIError{Method: "GET", Endpoint: "/api/requests/{rq_id}", Status: 404,
			Detail: "There is no request with specified id"}
	}
	f.mu.Lock()
	call := f.rq
	f.rq++
	f.mu.Unlock()
	if f.rqFault != nil {
		if err := f.rqFault(call); err != nil {
			return cvat.Request{}, err
		}
	}
	taskID := f.taskID
	rq := cvat.Request{ID: f.rqID, Operation: cvat.RequestOperation{Type: "create:task", Target: "task",
		TaskID: &taskID}, CreatedDate: t0}
	status := cvat.StatusQueued
	switch {
	case f.statuses != nil:
		status = f.statuses[min(call, len(f.statuses)-1)]
	case at >= f.finishedAt:
		status = cvat.StatusFinished
		if f.failMsg != "" {
			status = cvat.StatusFailed
		}
	case at >= f.startedAt:
		status = cvat.StatusStarted
	}
	rq.Status = status
	p := 0.0
	if f.progress != nil {
		p = f.progress(call)
	}
	rq.Progress = &p
	if status != cvat.StatusQueued {
		s := t0.Add(f.startedAt)
		rq.StartedDate = &s
	}
	if status == cvat.StatusFinished || status == cvat.StatusFailed {
		e := t0.Add(f.finishedAt)
		rq.FinishedDate = &e
	}
	if status == cvat.StatusFailed {
		rq.Message = f.failMsg
	}
	return rq, nil
}

func (f *fakeAPI) GetTask(ctx context.Context, id int) (cvat.Task, error) {
	if _, err := f.begin("task"); err != nil {
		return cvat.Task{}, err
	}
	if f.getTaskErr != nil {
		return cvat.Task{}, f.getTaskErr
	}
	return cvat.Task{ID: id}, ctx.Err()
}

func (f *fakeAPI) ListJobs(ctx context.Context, q cvat.JobsQuery) (cvat.JobPage, error) {
	at, err := f.begin(fmt.Sprintf("jobs(page=%d,size=%d,sort=%s)", q.Page, q.PageSize, q.Sort))
	if err != nil {
		return cvat.JobPage{}, err
	}
	f.mu.Lock()
	call := f.jobsCalls
	f.jobsCalls++
	f.mu.Unlock()
	if f.jobsFault != nil {
		if err := f.jobsFault(call); err != nil {
			return cvat.JobPage{}, err
		}
	}
	if q.TaskID != f.taskID {
		f.t.Errorf("ListJobs task %d, want %d", q.TaskID, f.taskID)
	}
	return f.page(ctx, at, max(q.Page, 1), q.PageSize, q.Sort)
}

func (f *fakeAPI) ListJobsPage(ctx context.Context, next string) (cvat.JobPage, error) {
	u, err := url.Parse(next)
	if err != nil {
		f.t.Fatalf("bad next link %q", next)
	}
	page, _ := strconv.Atoi(u.Query().Get("page"))
	size, _ := strconv.Atoi(u.Query().Get("size"))
	at, err := f.begin(fmt.Sprintf("next(page=%d)", page))
	if err != nil {
		return cvat.JobPage{}, err
	}
	return f.page(ctx, at, page, size, u.Query().Get("sort"))
}

func (f *fakeAPI) page(ctx context.Context, at time.Duration, page, size int, sort string) (cvat.JobPage, error) {
	if err := ctx.Err(); err != nil {
		return cvat.JobPage{}, err
	}
	var all []cvat.Job
	if at >= f.visibleAt && f.failMsg == "" {
		for i := range f.jobs {
			all = append(all, cvat.Job{ID: 101 + i, TaskID: f.taskID})
		}
	}
	if sort != "id" {
		slices.Reverse(all) // the server default is -id
	}
	switch {
	case size == cvat.PageSizeAll:
		size = max(len(all), 1)
	case size <= 0:
		size = 10
	}
	lo, hi := min((page-1)*size, len(all)), min(page*size, len(all))
	p := cvat.JobPage{Count: len(all), Results: all[lo:hi]}
	if hi < len(all) {
		next := fmt.Sprintf("http://fake/api/jobs?page=%d&size=%d&sort=%s", page+1, size, sort)
		p.Next = &next
	}
	return p, nil
}
