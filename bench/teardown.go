package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

// cleanup deletes, by id, every task, webhook and project this run created, and nothing else. With the run
// ctx already cancelled it works on a fresh, bounded context.
func (r *Runner) cleanup(ctx context.Context, runID string) []string {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var errs []string
	r.mu.Lock()
	tasks := slices.Clone(r.tasks)
	prepared := slices.Clone(r.prepared)
	projectIDs := map[int]bool{}
	var projects []int
	for _, name := range r.cfg.Strategies {
		if id, ok := r.projects[name]; ok {
			projects = append(projects, id)
			projectIDs[id] = true
		}
	}
	for _, id := range r.batchProjects {
		projects = append(projects, id)
		projectIDs[id] = true
	}
	r.mu.Unlock()

	deleted := map[int]bool{}
	for _, id := range tasks {
		if err := r.deleteTask(cctx, id); err != nil {
			errs = append(errs, err.Error())
		}
		deleted[id] = true
	}
	// A create cancelled in flight may have created a task whose id never reached us: find it by its exact
	// run-specific name in one of this run's projects, and delete it by id.
	if len(projects) > 0 {
		prefix := NamePrefix + runID + "-"
		found, err := r.api.ListTasks(cctx, prefix)
		if err != nil {
			errs = append(errs, fmt.Sprintf("list tasks for cleanup: %v", err))
		}
		for _, t := range found {
			if deleted[t.ID] || !strings.HasPrefix(t.Name, prefix) || t.ProjectID == nil || !projectIDs[*t.ProjectID] {
				continue
			}
			if err := r.deleteTask(cctx, t.ID); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if r.clockProject != 0 {
		projects = append(projects, r.clockProject)
	}
	for _, p := range prepared {
		if err := p.Close(cctx); err != nil {
			errs = append(errs, fmt.Sprintf("close strategy: %v", err))
		}
	}
	for _, id := range projects {
		if err := r.api.DeleteProject(cctx, id); err != nil && !errors.Is(err, cvat.ErrNotFound) {
			errs = append(errs, fmt.Sprintf("delete project %d: %v", id, err))
		}
	}
	sort.Strings(errs)
	return errs
}

// deleteTask deletes one task; a 409 means the worker still holds the task (API.md §4.3), so it tries again,
// as after a transient failure (the client's own retries of the idempotent DELETE were not enough).
func (r *Runner) deleteTask(ctx context.Context, id int) error {
	var err error
	for attempt := range 5 {
		err = r.api.DeleteTask(ctx, id)
		if err == nil || errors.Is(err, cvat.ErrNotFound) {
			return nil
		}
		if !errors.Is(err, cvat.ErrConflict) && !strategies.Transient(err) {
			break
		}
		select {
		case <-r.clock.After(time.Duration(attempt+1) * time.Second):
		case <-ctx.Done():
			return fmt.Errorf("delete task %d: %w", id, ctx.Err())
		}
	}
	return fmt.Errorf("delete task %d: %w", id, err)
}
