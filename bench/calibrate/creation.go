package calibrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// createTask creates one task of point p in the experiment's project (POST /api/tasks, timed).
func (e *experiment) createTask(ctx context.Context, p Point, phase string) (Creation, error) {
	e.mu.Lock()
	seq := e.done + len(e.live)
	e.mu.Unlock()
	t0 := time.Now()
	t, err := e.c.CreateTask(ctx, cvat.TaskSpec{Name: e.name("calibrate-" + strconv.Itoa(seq)), ProjectID: &e.project, SegmentSize: p.SegmentSize})
	if err != nil {
		return Creation{}, &Error{"api_write", fmt.Errorf("create task: %w", err)}
	}
	e.mu.Lock()
	e.live[t.ID] = true
	e.mu.Unlock()
	files := e.files[p.Images]
	var bytes int64
	for _, f := range files {
		bytes += int64(len(f.Data))
	}
	return Creation{Phase: phase, Point: p.Name, Images: p.Images, SegmentSize: p.SegmentSize, Quality: p.Quality,
		PreviewFrames: p.PreviewFrames(e.d.ChunkSize), PixelsPerVGA: float64(e.d.ImageWidth*e.d.ImageHeight) / (640 * 480),
		UploadBytes: bytes, TaskID: t.ID, CreateMs: ms(time.Since(t0))}, nil
}

// upload attaches the point's images as the SDK and `cvatbench run` do (Upload-Start, one Upload-Multiple,
// Upload-Finish), timing the whole and each request.
func (e *experiment) upload(ctx context.Context, cr *Creation, p Point) (string, error) {
	chunk := e.d.ChunkSize
	var mu sync.Mutex
	var calls []float64
	octx := cvat.WithCallObserver(ctx, func(c cvat.Call) {
		mu.Lock()
		calls = append(calls, ms(c.Duration))
		mu.Unlock()
	})
	t0 := time.Now()
	rqID, err := e.c.UploadData(octx, cr.TaskID, cvat.DataSpec{ImageQuality: p.Quality, ChunkSize: &chunk}, e.files[p.Images], cvat.UploadSDK)
	if err != nil {
		return "", &Error{"upload_per_file", fmt.Errorf("upload to task %d: %w", cr.TaskID, err)}
	}
	cr.UploadMs = ms(time.Since(t0))
	mu.Lock()
	defer mu.Unlock()
	if len(calls) == 3 { // one attempt each: Start, Multiple, Finish (a retried call would blur the split)
		cr.UploadStartMs, cr.UploadFilesMs, cr.UploadFinishMs = calls[0], calls[1], calls[2]
	}
	return rqID, nil
}

// start creates and uploads.
func (e *experiment) start(ctx context.Context, p Point, phase string) (Creation, string, error) {
	cr, err := e.createTask(ctx, p, phase)
	if err != nil {
		return cr, "", err
	}
	rqID, err := e.upload(ctx, &cr, p)
	return cr, rqID, err
}

func (e *experiment) createAndWait(ctx context.Context, p Point, phase string) (Creation, error) {
	cr, rqID, err := e.start(ctx, p, phase)
	if err != nil {
		return cr, err
	}
	return cr, e.finish(ctx, &cr, rqID)
}

// finish waits for the creation, reads its dates and jobs, and deletes the task.
func (e *experiment) finish(ctx context.Context, cr *Creation, rqID string) error {
	if err := e.wait(ctx, cr, rqID); err != nil {
		return err
	}
	return e.remove(ctx, cr)
}

// wait polls the creation request until it finished, then reads the task's jobs.
func (e *experiment) wait(ctx context.Context, cr *Creation, rqID string) error {
	deadline := time.Now().Add(e.d.Timeout)
	for {
		rq, err := e.c.GetRequest(ctx, rqID)
		if err != nil {
			return &Error{"pickup", fmt.Errorf("read request of task %d: %w", cr.TaskID, err)}
		}
		switch rq.Status {
		case cvat.StatusFailed:
			return &Error{"processing", fmt.Errorf("the server failed task %d (%s): %s", cr.TaskID, cr.Point, firstLine(rq.Message))}
		case cvat.StatusFinished:
			if rq.StartedDate == nil || rq.FinishedDate == nil {
				return &Error{"pickup", fmt.Errorf("request of task %d finished without started_date or finished_date", cr.TaskID)}
			}
			cr.RequestCreated, cr.Started, cr.Finished = rq.CreatedDate, *rq.StartedDate, *rq.FinishedDate
			return e.readJobs(ctx, cr)
		}
		if time.Now().After(deadline) {
			return e.stuck(ctx, *cr, rqID)
		}
		if err := sleep(ctx, e.d.StatusPollPeriod); err != nil {
			return err
		}
	}
}

// stuck explains a creation that did not finish within the timeout: never started (the queue) or started
// and never finished (processing).
func (e *experiment) stuck(ctx context.Context, cr Creation, rqID string) error {
	rq, err := e.c.GetRequest(ctx, rqID)
	if err == nil && rq.Status == cvat.StatusQueued {
		return &Error{"pickup", fmt.Errorf("task %d (%s) was not started within %v: the import queue does not pick up work", cr.TaskID, cr.Point, e.d.Timeout)}
	}
	return &Error{"processing", fmt.Errorf("task %d (%s) did not finish within %v", cr.TaskID, cr.Point, e.d.Timeout)}
}

func (e *experiment) readJobs(ctx context.Context, cr *Creation) error {
	page, err := e.c.ListJobs(ctx, cvat.JobsQuery{TaskID: cr.TaskID, PageSize: cvat.PageSizeAll, Sort: "id"})
	if err != nil {
		return &Error{"per_job", fmt.Errorf("list jobs of task %d: %w", cr.TaskID, err)}
	}
	if len(page.Results) == 0 {
		return &Error{"per_job", fmt.Errorf("task %d finished with no jobs", cr.TaskID)}
	}
	jobs := page.Results
	slices.SortFunc(jobs, func(a, b cvat.Job) int { return a.ID - b.ID })
	cr.JobCreated = cr.JobCreated[:0]
	for _, j := range jobs {
		cr.JobCreated = append(cr.JobCreated, j.CreatedDate)
	}
	if e.hooks != nil {
		cr.HookArrivals = e.hooks.arrivals(cr.TaskID, len(jobs), time.Second)
	}
	return nil
}

// remove deletes the task (timed: the delete_per_job term).
func (e *experiment) remove(ctx context.Context, cr *Creation) error {
	t0 := time.Now()
	err := e.c.DeleteTask(ctx, cr.TaskID)
	if err != nil && !errors.Is(err, cvat.ErrNotFound) {
		return &Error{"delete_per_job", fmt.Errorf("delete task %d: %w", cr.TaskID, err)}
	}
	cr.DeleteMs = ms(time.Since(t0))
	e.mu.Lock()
	delete(e.live, cr.TaskID)
	e.done++
	e.mu.Unlock()
	return nil
}

// cleanup deletes, by id, what the experiment created and has not deleted yet: tasks, the receiver's
// webhook, the project. It runs on a fresh bounded context, so a cancelled run still cleans up.
func (e *experiment) cleanup(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	e.mu.Lock()
	var tasks []int
	for id := range e.live {
		tasks = append(tasks, id)
	}
	e.mu.Unlock()
	slices.Sort(tasks)
	for _, id := range tasks {
		for attempt := range 5 { // 409 while the worker still holds the task (API.md §4.3)
			err := e.c.DeleteTask(cctx, id)
			if err == nil || errors.Is(err, cvat.ErrNotFound) || !errors.Is(err, cvat.ErrConflict) {
				if err != nil && !errors.Is(err, cvat.ErrNotFound) {
					e.progressf("calibrate: cleanup: delete task %d: %v", id, err)
				}
				break
			}
			_ = sleep(cctx, time.Duration(attempt+1)*time.Second)
		}
	}
	if e.hooks != nil {
		if err := e.hooks.close(cctx); err != nil {
			e.progressf("calibrate: cleanup: %v", err)
		}
	}
	if e.project != 0 {
		if err := e.c.DeleteProject(cctx, e.project); err != nil && !errors.Is(err, cvat.ErrNotFound) {
			e.progressf("calibrate: cleanup: delete project %d: %v", e.project, err)
		}
	}
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
