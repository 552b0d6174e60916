package bench_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

// fakeClock advances 1 ms on every Now and jumps on After, so timestamps are strictly ordered and nothing
// waits in real time.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 27, 0, 15, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// fakeAPI is an in-memory CVAT: uploads finish at once, the request's dates are on the server clock, which
// runs offset ahead of the fake clock.
type fakeAPI struct {
	clk    *fakeClock
	offset time.Duration

	mu             sync.Mutex
	nextID         int
	projects       map[int]cvat.Project
	tasks          map[int]cvat.Task
	requests       map[string]cvat.Request
	jobs           map[int][]int
	deletedTasks   []int
	deletedProject []int
	failUpload     bool
	uploads        map[int]fakeUpload                                  // task -> what was uploaded
	chunkFault     func(jobID, index int, data []byte) ([]byte, error) // rewrites JobChunk's answer
	chunkReads     int
}

// fakeUpload is what a task was given: its frames in upload order and the image quality.
type fakeUpload struct {
	files   []cvat.File
	quality int
}

// fakeChunkSize is the chunk size of the fake's jobs, which hold 2 frames each.
const fakeChunkSize = 2

func newFakeAPI(clk *fakeClock) *fakeAPI {
	return &fakeAPI{clk: clk, offset: 3 * time.Second, nextID: 100, projects: map[int]cvat.Project{},
		tasks: map[int]cvat.Task{}, requests: map[string]cvat.Request{}, jobs: map[int][]int{},
		uploads: map[int]fakeUpload{}}
}

var _ bench.API = (*fakeAPI)(nil)

func (f *fakeAPI) id() int { f.nextID++; return f.nextID }

func (f *fakeAPI) About(context.Context) (cvat.About, error) {
	return cvat.About{Version: "2.73.0"}, nil
}

func (f *fakeAPI) CreateProject(_ context.Context, spec cvat.ProjectSpec) (cvat.Project, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := cvat.Project{ID: f.id(), Name: spec.Name}
	f.projects[p.ID] = p
	return p, nil
}

func (f *fakeAPI) DeleteProject(_ context.Context, id int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.projects[id]; !ok {
		return &cvat.APIError{Method: "DELETE", Endpoint: "/api/projects/{id}", Status: 404}
	}
	delete(f.projects, id)
	f.deletedProject = append(f.deletedProject, id)
	return nil
}

func (f *fakeAPI) CreateTask(ctx context.Context, spec cvat.TaskSpec) (cvat.Task, error) {
	if err := ctx.Err(); err != nil {
		return cvat.Task{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := cvat.Task{ID: f.id(), Name: spec.Name, ProjectID: spec.ProjectID, SegmentSize: spec.SegmentSize}
	f.tasks[t.ID] = t
	return t, nil
}

func (f *fakeAPI) DeleteTask(_ context.Context, id int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.tasks[id]; !ok {
		return &cvat.APIError{Method: "DELETE", Endpoint: "/api/tasks/{id}", Status: 404}
	}
	delete(f.tasks, id)
	f.deletedTasks = append(f.deletedTasks, id)
	return nil
}

func (f *fakeAPI) ListTasks(_ context.Context, search string) ([]cvat.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cvat.Task
	for _, t := range f.tasks {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b cvat.Task) int { return a.ID - b.ID })
	return out, nil
}

// UploadData stamps created_date on the server clock halfway through the call, then "processes" at once.
func (f *fakeAPI) UploadData(ctx context.Context, taskID int, spec cvat.DataSpec, files []cvat.File, _ cvat.UploadMode) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if f.failUpload {
		return "", &cvat.APIError{Method: "POST", Endpoint: "/api/tasks/{id}/data", Status: 400, Detail: "bad data"}
	}
	created := f.clk.Now().Add(f.offset)
	started, finished := created.Add(10*time.Millisecond), created.Add(40*time.Millisecond)
	rq := fmt.Sprintf("action=create&target=task&target_id=%d", taskID)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[rq] = cvat.Request{ID: rq, Status: cvat.StatusFinished, CreatedDate: created,
		StartedDate: &started, FinishedDate: &finished}
	f.uploads[taskID] = fakeUpload{files: files, quality: spec.ImageQuality}
	n := (len(files) + fakeChunkSize - 1) / fakeChunkSize
	for range n {
		f.jobs[taskID] = append(f.jobs[taskID], f.id())
	}
	return rq, nil
}

func (f *fakeAPI) GetRequest(_ context.Context, rqID string) (cvat.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rq, ok := f.requests[rqID]
	if !ok {
		return cvat.Request{}, &cvat.APIError{Method: "GET", Endpoint: "/api/requests/{rq_id}", Status: 404}
	}
	return rq, nil
}

func (f *fakeAPI) ListJobs(_ context.Context, q cvat.JobsQuery) (cvat.JobPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var p cvat.JobPage
	frames := len(f.uploads[q.TaskID].files)
	for k, id := range f.jobs[q.TaskID] {
		size := fakeChunkSize
		p.Results = append(p.Results, cvat.Job{ID: id, TaskID: q.TaskID, Type: "annotation",
			StartFrame: k * fakeChunkSize, StopFrame: min((k+1)*fakeChunkSize, frames) - 1, DataChunkSize: &size})
	}
	p.Count = len(p.Results)
	return p, nil
}

func (f *fakeAPI) ListJobsPage(context.Context, string) (cvat.JobPage, error) {
	return cvat.JobPage{}, fmt.Errorf("no pages")
}

func (f *fakeAPI) GetTask(_ context.Context, id int) (cvat.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tasks[id], nil
}

// listStrategy reads the job list once; block makes it wait for ctx instead (to test cancellation).
type listStrategy struct {
	name    string
	block   chan struct{} // if non-nil: signal entry, then wait for ctx
	entered chan string
}

func (s *listStrategy) Name() string { return s.name }

func (s *listStrategy) Wait(ctx context.Context, api strategies.API, clk strategies.Clock, tr strategies.Trial) (strategies.Outcome, error) {
	if s.block != nil {
		s.entered <- s.name
		<-ctx.Done()
		return strategies.Outcome{}, ctx.Err()
	}
	p, err := api.ListJobs(ctx, cvat.JobsQuery{TaskID: tr.TaskID})
	if err != nil {
		return strategies.Outcome{}, err
	}
	var ids []int
	for _, j := range p.Results {
		ids = append(ids, j.ID)
	}
	return strategies.Outcome{JobIDs: ids, SeenAt: clk.Now(), Signal: "jobs-list"}, nil
}
