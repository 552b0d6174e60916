package cvatsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// TaskTimeline is the ground truth of a task's latest creation attempt, on the
// server clock. Times not reached yet are zero.
type TaskTimeline struct {
	TaskID        int
	EnqueuedAt    time.Time // Upload-Finish enqueued the request (created_date)
	StartedAt     time.Time // a worker took it (started_date)
	JobsVisibleAt time.Time // the commit: every job visible at once
	FinishedAt    time.Time // the request reads finished or failed (finished_date)
	JobIDs        []int
	Failed        bool
}

func (tl *timeline) export(taskID int) TaskTimeline {
	return TaskTimeline{TaskID: taskID, EnqueuedAt: tl.enqueued, StartedAt: tl.started, JobsVisibleAt: tl.visible,
		FinishedAt: tl.finished, JobIDs: append([]int(nil), tl.jobIDs...), Failed: tl.failed}
}

// Timeline returns the ground truth of a task; false for unknown task ids.
// It survives the task's deletion.
func (s *Server) Timeline(taskID int) (TaskTimeline, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tl := s.tls[taskID]
	if tl == nil {
		return TaskTimeline{}, false
	}
	return tl.export(taskID), true
}

// WaitJobsVisible blocks until the task's current creation attempt commits
// or fails, or ctx ends. The request may still read started when it returns.
func (s *Server) WaitJobsVisible(ctx context.Context, taskID int) (TaskTimeline, error) {
	s.mu.Lock()
	tl := s.tls[taskID]
	s.mu.Unlock()
	if tl == nil {
		return TaskTimeline{}, fmt.Errorf("wait jobs of task %d: unknown task", taskID)
	}
	select {
	case <-tl.done:
	case <-ctx.Done():
		return TaskTimeline{}, fmt.Errorf("wait jobs of task %d: %w", taskID, ctx.Err())
	case <-s.ctx.Done():
		return TaskTimeline{}, fmt.Errorf("wait jobs of task %d: %w", taskID, errClosed)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return tl.export(taskID), nil
}

// timelineJSON is the wire form of GET /_cvatsim/tasks/{id}/timeline.
type timelineJSON struct {
	TaskID        int        `json:"task_id"`
	EnqueuedAt    *time.Time `json:"enqueued_at"`
	StartedAt     *time.Time `json:"started_at"`
	JobsVisibleAt *time.Time `json:"jobs_visible_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	JobIDs        []int      `json:"job_ids"`
	Failed        bool       `json:"failed"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// serveEmulatorOnly serves the paths real CVAT does not have. No auth.
func (s *Server) serveEmulatorOnly(w http.ResponseWriter, r *http.Request, segs []string, trailing bool) {
	w.Header().Set("X-Request-Id", uuid4())
	if trailing || len(segs) != 4 || segs[1] != "tasks" || segs[3] != "timeline" {
		notFoundHTML(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id, err := strconv.Atoi(segs[2])
	tl, ok := s.Timeline(id)
	if err != nil || !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"detail":"unknown task"}`))
		return
	}
	out := timelineJSON{TaskID: id, EnqueuedAt: timePtr(tl.EnqueuedAt), StartedAt: timePtr(tl.StartedAt),
		JobsVisibleAt: timePtr(tl.JobsVisibleAt), FinishedAt: timePtr(tl.FinishedAt), JobIDs: tl.JobIDs, Failed: tl.Failed}
	if out.JobIDs == nil {
		out.JobIDs = []int{}
	}
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
