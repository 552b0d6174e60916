package cvat_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cvatbench/cvatbench/cvat"
)

// TestDecodeAssets decodes the real CVAT list responses in shared/cvat/assets through the client (and the
// schema validator) and checks that every field cvatbench relies on is populated.
func TestDecodeAssets(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "cvat", "assets")
	mux := http.NewServeMux()
	for _, name := range []string{"tasks", "jobs", "webhooks"} {
		b, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		mux.HandleFunc("GET /api/"+name, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, string(b)) })
	}
	c, _ := newClient(t, mux, true, nil)
	ctx := context.Background()

	tasks, err := c.ListTasks(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.ListJobs(ctx, cvat.JobsQuery{PageSize: cvat.PageSizeAll})
	if err != nil {
		t.Fatal(err)
	}
	webhooks, err := c.ListWebhooks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) == 0 || len(page.Results) != page.Count || page.Count == 0 || len(webhooks) == 0 {
		t.Fatalf("decoded %d tasks, %d/%d jobs, %d webhooks", len(tasks), len(page.Results), page.Count, len(webhooks))
	}

	jobsPerTask := map[int]int{}
	for _, j := range page.Results {
		jobsPerTask[j.TaskID]++
		switch {
		case j.ID == 0 || j.TaskID == 0 || j.CreatedDate.IsZero():
			t.Errorf("job %+v: id, task_id or created_date missing", j)
		case !slices.Contains([]string{"annotation", "ground_truth", "consensus_replica"}, j.Type):
			t.Errorf("job %d: type %q", j.ID, j.Type)
		case j.StopFrame < j.StartFrame || j.FrameCount <= 0:
			t.Errorf("job %d: frames %d..%d, count %d", j.ID, j.StartFrame, j.StopFrame, j.FrameCount)
		case j.Stage == "" || j.State == "" || j.Status == "":
			t.Errorf("job %d: stage/state/status empty", j.ID)
		case (j.Type == "consensus_replica") != (j.ParentJobID != nil):
			t.Errorf("job %d: type %s with parent %v", j.ID, j.Type, j.ParentJobID)
		}
	}
	for _, task := range tasks {
		switch {
		case task.ID == 0 || task.Name == "" || task.Status == "" || task.CreatedDate.IsZero() || task.Jobs.URL == "":
			t.Errorf("task %+v: id, name, status, created_date or jobs.url missing", task)
		case task.Jobs.Count != jobsPerTask[task.ID]:
			t.Errorf("task %d: jobs.count %d, but %d jobs in jobs.json", task.ID, task.Jobs.Count, jobsPerTask[task.ID])
		case task.Initialized() && (task.Size == nil || *task.Size == 0 || task.Data == nil || task.Mode == "" || task.Jobs.Count == 0):
			t.Errorf("initialized task %d lacks size, data, mode or jobs", task.ID)
		case !task.Initialized() && task.Jobs.Count != 0:
			t.Errorf("task %d without media has %d jobs", task.ID, task.Jobs.Count)
		}
	}
	for _, w := range webhooks {
		if w.ID == 0 || w.TargetURL == "" || len(w.Events) == 0 || w.CreatedDate.IsZero() ||
			(w.Type == "project") != (w.ProjectID != nil) || (w.Type != "project" && w.Type != "organization") {
			t.Errorf("webhook %+v: fields missing or inconsistent", w)
		}
	}
}
