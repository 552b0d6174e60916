package cvatsim_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cvatbench/cvatbench/cvatsim"
)

// jobRows lists a task's jobs as (id, start, stop, type).
func (e *env) jobRows(taskID int) [][4]any {
	e.t.Helper()
	var page struct {
		Results []struct {
			ID         int    `json:"id"`
			StartFrame int    `json:"start_frame"`
			StopFrame  int    `json:"stop_frame"`
			Type       string `json:"type"`
		} `json:"results"`
	}
	e.must(200, e.do("GET", fmt.Sprintf("/api/jobs?task_id=%d&page_size=all&sort=id", taskID), nil, nil)).json(e.t, &page)
	var rows [][4]any
	for _, j := range page.Results {
		rows = append(rows, [4]any{j.ID, j.StartFrame, j.StopFrame, j.Type})
	}
	return rows
}

func TestParseWhatIf(t *testing.T) {
	for spec, want := range map[string]bool{"": false, "prealloc-jobs": true, " prealloc-jobs ,": true} {
		w, err := cvatsim.ParseWhatIf(spec)
		if err != nil || w.PreallocJobs != want {
			t.Errorf("ParseWhatIf(%q) = %+v, %v", spec, w, err)
		}
	}
	if _, err := cvatsim.ParseWhatIf("instant-jobs"); err == nil || !contains(err.Error(), `unknown what-if "instant-jobs"`) {
		t.Errorf("unknown what-if: %v", err)
	}
}

// Under the what-if the job rows, with their final IDs and frame ranges, are listed from the 202 on while
// the request is still queued; the commit fills them in without changing an ID, and the ground truth says
// the jobs were visible from the acceptance.
func TestPreallocJobsListedAtAcceptance(t *testing.T) {
	rec := newStatusRecorder()
	e, clk := heldEnv(t, rec, func(o *cvatsim.Options) { o.WhatIf.PreallocJobs = true })
	id := e.createTask(map[string]any{"name": "pre", "segment_size": 2})
	accepted := clk.Now()
	rq := e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(5))
	if got, _ := e.request(rq); got.Status != "queued" {
		t.Fatalf("request %+v", got)
	}
	early := e.jobRows(id)
	if len(early) != 3 || early[0][1] != 0 || early[0][2] != 1 || early[2][1] != 4 || early[2][2] != 4 {
		t.Fatalf("jobs at the 202: %v, want frames 0-1, 2-3, 4-4", early)
	}
	releasePickUp(t, clk)
	rec.waitFor(t, rq, "finished", 1)
	if late := e.jobRows(id); !slices.Equal(late, early) {
		t.Errorf("jobs after the commit %v, at the 202 %v", late, early)
	}
	tl := e.waitVisible(id)
	if !tl.JobsVisibleAt.Equal(accepted) || len(tl.JobIDs) != 3 || tl.JobIDs[0] != early[0][0] {
		t.Errorf("timeline %+v, want visible at the acceptance %v with the early IDs", tl, accepted)
	}
	// Without the what-if nothing is listed before the commit.
	plain, _ := heldEnv(t, nil, nil)
	id2 := plain.createTask(map[string]any{"name": "plain", "segment_size": 2})
	plain.uploadSingle(id2, map[string]string{"image_quality": "70"}, images(5))
	if rows := plain.jobRows(id2); len(rows) != 0 {
		t.Errorf("CVAT 2.73 lists %v before the commit", rows)
	}
}

// A creation that fails rolls the pre-allocated rows back, as CVAT's transaction would.
func TestPreallocJobsRolledBackOnFailure(t *testing.T) {
	rec := newStatusRecorder()
	e, clk := heldEnv(t, rec, func(o *cvatsim.Options) { o.WhatIf.PreallocJobs = true })
	id := e.createTask(map[string]any{"name": "bad"})
	body, ct := multipartBody(map[string]string{"image_quality": "70"}, []file{{name: "0.png", data: []byte("not an image")}})
	r := e.must(202, e.do("POST", fmt.Sprintf("/api/tasks/%d/data", id), body, map[string]string{"Content-Type": ct}))
	rq := r.obj(t)["rq_id"].(string)
	if rows := e.jobRows(id); len(rows) != 1 {
		t.Fatalf("pre-allocated rows %v", rows)
	}
	releasePickUp(t, clk)
	rec.waitFor(t, rq, "failed", 1)
	if rows := e.jobRows(id); len(rows) != 0 {
		t.Errorf("rows after the failure %v", rows)
	}
	if tl, _ := e.s.Timeline(id); !tl.JobsVisibleAt.IsZero() || len(tl.JobIDs) != 0 || !tl.Failed {
		t.Errorf("timeline after the rollback %+v", tl)
	}
}
