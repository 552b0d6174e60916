package cvatsim_test

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/cvatsim"
)

type requestJSON struct {
	ID           string
	Status       string
	Message      string
	Progress     float64
	CreatedDate  time.Time  `json:"created_date"`
	StartedDate  *time.Time `json:"started_date"`
	FinishedDate *time.Time `json:"finished_date"`
	ExpiryDate   *time.Time `json:"expiry_date"`
	Operation    struct {
		OrgID *int `json:"org_id"`
	}
}

func (e *env) request(rqID string) (requestJSON, int) {
	e.t.Helper()
	r := e.do("GET", "/api/requests/"+url.PathEscape(rqID), nil, nil)
	var out requestJSON
	if r.status == 200 {
		r.json(e.t, &out)
	}
	return out, r.status
}

func TestRequestLifecycleOrder(t *testing.T) {
	rec := newStatusRecorder()
	e := newEnv(t, cvatsim.Options{OnRequestStatus: rec.hook})
	id := e.createTask(map[string]any{"name": "life", "segment_size": 2})
	rq := e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(5))
	if rq != fmt.Sprintf("action=create&target=task&target_id=%d", id) {
		t.Fatalf("rq_id %q", rq)
	}
	seq := rec.waitFor(t, rq, "finished", 1)
	if want := []string{"queued", "started", "finished"}; !reflect.DeepEqual(seq, want) {
		t.Fatalf("statuses %v, want %v", seq, want)
	}
	got, status := e.request(rq)
	if status != 200 || got.Status != "finished" || got.Message != "" || got.StartedDate == nil || got.FinishedDate == nil {
		t.Fatalf("request %+v", got)
	}
	if want := got.FinishedDate.Add(500 * time.Second); got.ExpiryDate == nil || !got.ExpiryDate.Equal(want) {
		t.Fatalf("expiry %v, want %v", got.ExpiryDate, want)
	}
	tl, ok := e.s.Timeline(id)
	if !ok || tl.Failed || len(tl.JobIDs) != 3 {
		t.Fatalf("timeline %+v", tl)
	}
	if tl.EnqueuedAt.After(tl.StartedAt) || tl.StartedAt.After(tl.JobsVisibleAt) || tl.JobsVisibleAt.After(tl.FinishedAt) {
		t.Fatalf("timeline out of order: %+v", tl)
	}
	if !tl.EnqueuedAt.Equal(got.CreatedDate) || !tl.FinishedAt.Equal(*got.FinishedDate) {
		t.Fatalf("timeline %+v disagrees with the request %+v", tl, got)
	}
	// Percent-decoded path and the list endpoint.
	var list struct {
		Count   int
		Results []requestJSON
	}
	e.must(200, e.do("GET", fmt.Sprintf("/api/requests?action=create&target=task&task_id=%d", id), nil, nil)).json(t, &list)
	if list.Count != 1 || list.Results[0].ID != rq {
		t.Fatalf("list %+v", list)
	}
	// Timeline over HTTP, without auth.
	var tj struct {
		TaskID        int        `json:"task_id"`
		JobsVisibleAt *time.Time `json:"jobs_visible_at"`
		FinishedAt    *time.Time `json:"finished_at"`
		JobIDs        []int      `json:"job_ids"`
	}
	e.must(200, e.do("GET", fmt.Sprintf("/_cvatsim/tasks/%d/timeline", id), nil, map[string]string{"Authorization": ""})).json(t, &tj)
	if tj.TaskID != id || !reflect.DeepEqual(tj.JobIDs, tl.JobIDs) || tj.JobsVisibleAt.After(*tj.FinishedAt) {
		t.Fatalf("timeline json %+v", tj)
	}
	e.must(404, e.do("GET", "/_cvatsim/tasks/999/timeline", nil, nil))
}

func TestRequestNotFoundIsHTML(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	r := e.must(404, e.do("GET", "/api/requests/"+url.PathEscape("action=create&target=task&target_id=77"), nil, nil))
	if string(r.body) != "There is no request with specified id" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("404: %q %q", r.header.Get("Content-Type"), r.body)
	}
}

// releasePickUp waits until a held request's one-second pick-up is pending on clk and lets it pass.
func releasePickUp(t *testing.T, clk *fakeClock) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
}

// heldEnv has a manual clock and a one-second pick-up, so a request stays
// queued until the test advances the clock.
func heldEnv(t *testing.T, rec *statusRecorder, mod func(*cvatsim.Options)) (*env, *fakeClock) {
	clk := newFakeClock(false)
	prof := instantProfile(t)
	prof.PickUp = cvatsim.Dist{Base: time.Second}
	opts := cvatsim.Options{Profile: prof, Clock: clk}
	if rec != nil {
		opts.OnRequestStatus = rec.hook
	}
	if mod != nil {
		mod(&opts)
	}
	return newEnv(t, opts), clk
}

func TestUploadFinishWhileQueuedIs409(t *testing.T) {
	rec := newStatusRecorder()
	e, clk := heldEnv(t, rec, nil)
	id := e.createTask(map[string]any{"name": "dup"})
	rq := e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(2))
	if got, _ := e.request(rq); got.Status != "queued" || got.StartedDate != nil {
		t.Fatalf("first request %+v", got)
	}
	// A repeat that carries the files again fails on their rows first (500); one without files reaches the
	// queue check (409), as on a real CVAT 2.73.0.
	body, ct := multipartBody(map[string]string{"image_quality": "70"}, images(1))
	e.must(500, e.do("POST", fmt.Sprintf("/api/tasks/%d/data", id), body, map[string]string{"Content-Type": ct, "Upload-Finish": ""}))
	r := e.must(409, e.do("POST", fmt.Sprintf("/api/tasks/%d/data", id), []byte(`{"image_quality":70}`),
		map[string]string{"Content-Type": "application/json", "Upload-Finish": ""}))
	if r.obj(t)["rq_id"] != rq {
		t.Fatalf("409 body %s", r.body)
	}
	releasePickUp(t, clk)
	rec.waitFor(t, rq, "finished", 1)
	// Data on an initialized task: 400.
	r = e.must(400, e.do("POST", fmt.Sprintf("/api/tasks/%d/data", id), body, map[string]string{"Content-Type": ct}))
	if string(r.body) != `["Adding more data is not supported"]` {
		t.Fatalf("400 body %s", r.body)
	}
}

func TestFinishedRequestExpires(t *testing.T) {
	rec := newStatusRecorder()
	e, clk := heldEnv(t, rec, func(o *cvatsim.Options) { o.Profile.PickUp = cvatsim.Dist{} })
	id := e.createTask(map[string]any{"name": "exp"})
	rq := e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(1))
	rec.waitFor(t, rq, "finished", 1)
	clk.Advance(499 * time.Second)
	if _, st := e.request(rq); st != 200 {
		t.Fatalf("status %d before expiry", st)
	}
	clk.Advance(time.Second)
	if _, st := e.request(rq); st != 404 {
		t.Fatalf("status %d after expiry", st)
	}
	// The task and its jobs stay.
	var jobs struct{ Count int }
	e.must(200, e.do("GET", fmt.Sprintf("/api/jobs?task_id=%d", id), nil, nil)).json(t, &jobs)
	if jobs.Count != 1 {
		t.Fatalf("jobs %d", jobs.Count)
	}
}

func TestWorkerFailures(t *testing.T) {
	corrupt := images(3)
	corrupt[1].data = []byte("not an image at all")
	tests := []struct {
		name    string
		task    map[string]any
		fields  map[string]string
		files   []file
		message string
	}{
		{"corrupt image", map[string]any{}, map[string]string{"image_quality": "70"}, corrupt,
			"PIL.UnidentifiedImageError: cannot identify image file '/home/django/data/data/1/raw/img_0001.png'\n"},
		{"missing image_quality", map[string]any{}, map[string]string{}, images(2),
			"rest_framework.exceptions.ValidationError: [ErrorDetail(string=\"The 'image_quality' parameter is required for image- and video-based tasks\", code='invalid')]\n"},
		{"too many jobs", map[string]any{"segment_size": 1, "consensus_replicas": 11}, map[string]string{"image_quality": "70"}, images(417),
			"ValueError: Too many jobs would be created for the task"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newStatusRecorder()
			e := newEnv(t, cvatsim.Options{OnRequestStatus: rec.hook})
			id := e.createTask(tc.task)
			rq := e.uploadSingle(id, tc.fields, tc.files)
			seq := rec.waitFor(t, rq, "failed", 1)
			if !reflect.DeepEqual(seq, []string{"queued", "started", "failed"}) {
				t.Fatalf("statuses %v", seq)
			}
			got, _ := e.request(rq)
			if !strings.HasPrefix(got.Message, tc.message) || !strings.HasSuffix(got.Message, "\n") || got.ExpiryDate != nil {
				t.Fatalf("request %+v", got)
			}
			tl, _ := e.s.Timeline(id)
			if !tl.Failed || len(tl.JobIDs) != 0 || !tl.JobsVisibleAt.IsZero() {
				t.Fatalf("timeline %+v", tl)
			}
			task := e.must(200, e.do("GET", fmt.Sprintf("/api/tasks/%d", id), nil, nil)).obj(t)
			if task["media_type"] != "" || task["size"] != 0.0 {
				t.Fatalf("task after failure %v", task)
			}
		})
	}
}

func TestFailedRequestIsRequeuedUnderSameID(t *testing.T) {
	rec := newStatusRecorder()
	e := newEnv(t, cvatsim.Options{OnRequestStatus: rec.hook})
	id := e.createTask(map[string]any{"name": "retry"})
	rq := e.uploadSingle(id, map[string]string{}, images(2))
	rec.waitFor(t, rq, "failed", 1)
	r := e.must(202, e.do("POST", fmt.Sprintf("/api/tasks/%d/data", id), []byte(`{"image_quality":70}`), map[string]string{"Upload-Finish": ""}))
	if r.obj(t)["rq_id"] != rq {
		t.Fatalf("rq_id %s", r.body)
	}
	rec.waitFor(t, rq, "finished", 1)
	if tl, _ := e.s.Timeline(id); tl.Failed || len(tl.JobIDs) != 1 {
		t.Fatalf("timeline %+v", tl)
	}
}

func TestSDKThreeStepUpload(t *testing.T) {
	rec := newStatusRecorder()
	e := newEnv(t, cvatsim.Options{OnRequestStatus: rec.hook})
	id := e.createTask(map[string]any{"name": "sdk", "segment_size": 2})
	path := fmt.Sprintf("/api/tasks/%d/data/", id)
	r := e.must(202, e.do("POST", path, nil, map[string]string{"Upload-Start": "", "Content-Type": "application/json"}))
	if len(r.body) != 0 {
		t.Fatalf("Upload-Start body %q", r.body)
	}
	imgs := images(5)
	for _, batch := range [][]file{imgs[:3], imgs[3:]} {
		body, ct := multipartBody(map[string]string{"image_quality": "70"}, batch)
		e.must(200, e.do("POST", path, body, map[string]string{"Upload-Multiple": "", "Content-Type": ct}))
	}
	r = e.must(202, e.do("POST", path, []byte(`{"image_quality":70,"sorting_method":"lexicographical"}`), map[string]string{"Upload-Finish": ""}))
	rq := r.obj(t)["rq_id"].(string)
	rec.waitFor(t, rq, "finished", 1)
	task := e.must(200, e.do("GET", fmt.Sprintf("/api/tasks/%d", id), nil, nil)).obj(t)
	if task["size"] != 5.0 || task["image_quality"] != 70.0 || task["overlap"] != 0.0 || task["media_type"] != "image" {
		t.Fatalf("task %v", task)
	}
	if task["jobs"].(map[string]any)["count"] != 3.0 {
		t.Fatalf("jobs %v", task["jobs"])
	}
}

// TestRepeatedUploadBatch: a batch naming a file the task already has fails whole with Django's 500 page and
// stores nothing, as on a real CVAT 2.73.0 (unique client-file rows), in a later batch and within one.
func TestRepeatedUploadBatch(t *testing.T) {
	rec := newStatusRecorder()
	e := newEnv(t, cvatsim.Options{OnRequestStatus: rec.hook})
	id := e.createTask(map[string]any{"name": "repeat"})
	path := fmt.Sprintf("/api/tasks/%d/data/", id)
	e.must(202, e.do("POST", path, nil, map[string]string{"Upload-Start": ""}))
	imgs := images(3)
	multiple := func(batch []file) resp {
		body, ct := multipartBody(map[string]string{"image_quality": "70"}, batch)
		return e.do("POST", path, body, map[string]string{"Upload-Multiple": "", "Content-Type": ct})
	}
	e.must(200, multiple(imgs[:2]))
	for _, batch := range [][]file{{imgs[2], imgs[1]}, {imgs[2], imgs[2]}} {
		r := e.must(500, multiple(batch))
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "<h1>Server Error (500)</h1>") {
			t.Fatalf("repeat answered %q %q", r.header.Get("Content-Type"), r.body)
		}
	}
	r := e.must(202, e.do("POST", path, []byte(`{"image_quality":70}`), map[string]string{"Upload-Finish": ""}))
	rec.waitFor(t, r.obj(t)["rq_id"].(string), "finished", 1)
	task := e.must(200, e.do("GET", fmt.Sprintf("/api/tasks/%d", id), nil, nil)).obj(t)
	if task["size"] != 2.0 {
		t.Fatalf("size %v, want the 2 files of the first batch only", task["size"])
	}
}

func TestTUSUpload(t *testing.T) {
	rec := newStatusRecorder()
	e := newEnv(t, cvatsim.Options{OnRequestStatus: rec.hook})
	id := e.createTask(map[string]any{"name": "tus"})
	path := fmt.Sprintf("/api/tasks/%d/data/", id)
	e.must(202, e.do("POST", path, nil, map[string]string{"Upload-Start": ""}))
	img := pngImage(40, 30, 9)
	meta := "filename " + b64("big.png") + ",filetype " + b64("image/png")
	r := e.must(201, e.do("POST", path, nil, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": fmt.Sprint(len(img)), "Upload-Metadata": meta}))
	loc := r.header.Get("Location")
	if !strings.HasPrefix(loc, e.url+path+"1_") || r.header.Get("Upload-Filename") != "big.png" ||
		r.header.Get("Tus-Max-Size") != "26843545600" || r.header.Get("Tus-Version") != "1.0.0" {
		t.Fatalf("create headers %v", r.header)
	}
	e.must(409, e.do("POST", path, nil, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "5", "Upload-Metadata": meta}))
	e.must(400, e.do("POST", path, nil, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "5", "Upload-Metadata": "filetype " + b64("x")}))
	e.must(413, e.do("POST", path, nil, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "26843545601", "Upload-Metadata": "filename " + b64("huge.png")}))
	chunkPath := strings.TrimPrefix(loc, e.url)
	patch := func(off int, data []byte) resp {
		return e.do("PATCH", chunkPath, data, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Offset": fmt.Sprint(off), "Content-Type": "application/offset+octet-stream"})
	}
	half := len(img) / 2
	r = e.must(204, patch(0, img[:half]))
	if r.header.Get("Upload-Offset") != fmt.Sprint(half) {
		t.Fatalf("offset %q", r.header.Get("Upload-Offset"))
	}
	e.must(409, patch(0, img[:half]))
	e.must(413, patch(half, append(append([]byte{}, img[half:]...), 1, 2, 3)))
	h := e.must(200, e.do("HEAD", chunkPath, nil, map[string]string{"Tus-Resumable": "1.0.0"}))
	if h.header.Get("Upload-Offset") != fmt.Sprint(half) || h.header.Get("Upload-Length") != fmt.Sprint(len(img)) {
		t.Fatalf("HEAD %v", h.header)
	}
	e.must(204, patch(half, img[half:]))
	e.must(404, e.do("PATCH", path+"1_unknown", []byte("x"), map[string]string{"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}))
	r = e.must(202, e.do("POST", path, []byte(`{"image_quality":50}`), map[string]string{"Upload-Finish": ""}))
	rq := r.obj(t)["rq_id"].(string)
	rec.waitFor(t, rq, "finished", 1)
	if tl, _ := e.s.Timeline(id); len(tl.JobIDs) != 1 {
		t.Fatalf("timeline %+v", tl)
	}
}

func TestOneRunningJobPerUser(t *testing.T) {
	rec := newStatusRecorder()
	e, clk := heldEnv(t, rec, func(o *cvatsim.Options) { o.OneRunningJobPerUser = true })
	a := e.createTask(map[string]any{"name": "a"})
	b := e.createTask(map[string]any{"name": "b"})
	rqA := e.uploadSingle(a, map[string]string{"image_quality": "70"}, images(1))
	rqB := e.uploadSingle(b, map[string]string{"image_quality": "70"}, images(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Only one pick-up is pending although two workers are free.
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	rec.waitFor(t, rqA, "finished", 1)
	if got, _ := e.request(rqB); got.Status != "queued" {
		t.Fatalf("second request %+v while the first ran", got)
	}
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	rec.waitFor(t, rqB, "finished", 1)
	ta, _ := e.s.Timeline(a)
	tb, _ := e.s.Timeline(b)
	if tb.StartedAt.Before(ta.FinishedAt) {
		t.Fatalf("b started %v before a finished %v", tb.StartedAt, ta.FinishedAt)
	}
}

func TestDeleteTaskWhileQueuedFailsRequest(t *testing.T) {
	rec := newStatusRecorder()
	e, clk := heldEnv(t, rec, nil)
	id := e.createTask(map[string]any{"name": "gone"})
	rq := e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(1))
	e.must(204, e.do("DELETE", fmt.Sprintf("/api/tasks/%d", id), nil, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	rec.waitFor(t, rq, "failed", 1)
	if tl, ok := e.s.Timeline(id); !ok || !tl.Failed {
		t.Fatalf("timeline %+v", tl)
	}
}

func TestJobsListPaginationAndFilters(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	id := e.createTask(map[string]any{"name": "many", "segment_size": 1, "consensus_replicas": 2})
	e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(5))
	tl := e.waitVisible(id)
	if len(tl.JobIDs) != 15 {
		t.Fatalf("jobs %v", tl.JobIDs)
	}
	type jobs struct {
		Count    int
		Next     *string
		Previous *string
		Results  []struct {
			ID          int
			Type        string
			ParentJobID *int `json:"parent_job_id"`
			StartFrame  int  `json:"start_frame"`
		}
	}
	var all jobs
	e.must(200, e.do("GET", fmt.Sprintf("/api/jobs?task_id=%d&page_size=all&sort=id", id), nil, nil)).json(t, &all)
	if all.Count != 15 || len(all.Results) != 15 || all.Next != nil || all.Results[0].ID != tl.JobIDs[0] {
		t.Fatalf("all %+v", all)
	}
	if r := all.Results; r[0].Type != "annotation" || r[1].Type != "consensus_replica" || *r[1].ParentJobID != r[0].ID || r[3].StartFrame != 1 {
		t.Fatalf("job order %+v", r[:4])
	}
	var ann jobs
	e.must(200, e.do("GET", fmt.Sprintf("/api/jobs?task_id=%d&type=annotation&page_size=all", id), nil, nil)).json(t, &ann)
	if ann.Count != 5 || ann.Results[0].ID < ann.Results[1].ID {
		t.Fatalf("annotation jobs (default -id) %+v", ann)
	}
	var p1 jobs
	e.must(200, e.do("GET", fmt.Sprintf("/api/jobs?org=&task_id=%d&page=1", id), nil, nil)).json(t, &p1)
	if len(p1.Results) != 10 || p1.Next == nil || p1.Previous != nil {
		t.Fatalf("page 1 %+v", p1)
	}
	u, _ := url.Parse(*p1.Next)
	if q := u.Query(); q.Get("task_id") != fmt.Sprint(id) || q.Get("page") != "2" || !q.Has("org") {
		t.Fatalf("next %s", *p1.Next)
	}
	var p2 jobs
	e.must(200, e.do("GET", u.RequestURI(), nil, nil)).json(t, &p2)
	if len(p2.Results) != 5 || p2.Next != nil || p2.Previous == nil {
		t.Fatalf("page 2 %+v", p2)
	}
	r := e.must(404, e.do("GET", fmt.Sprintf("/api/jobs?task_id=%d&page=3", id), nil, nil))
	if r.obj(t)["detail"] != "Invalid page." {
		t.Fatalf("invalid page %s", r.body)
	}
	var none jobs
	e.must(200, e.do("GET", "/api/jobs?task_id=999&page_size=all", nil, nil)).json(t, &none)
	if none.Count != 0 || none.Results == nil {
		t.Fatalf("empty %+v", none)
	}
}

func TestProcessingTermsAndJobStamps(t *testing.T) {
	// The auto clock turns every wait into simulated time, so with constant terms the timeline shows the
	// profile's terms exactly. API-side terms are zero so that only the worker moves the clock.
	prof := cvatsim.Profile{
		Name:            "terms",
		PickUp:          cvatsim.Dist{Base: 19 * time.Millisecond},
		Processing:      cvatsim.Dist{Base: 40 * time.Millisecond},
		PerImage:        time.Millisecond,
		PerJob:          5 * time.Millisecond,
		JobsToCommit:    cvatsim.Dist{Base: 100 * time.Millisecond},
		PreviewPerFrame: cvatsim.QualityCost{10: 4 * time.Millisecond, 100: 10 * time.Millisecond},
		// 5 ms + 1 ms per object (3 jobs + 2 task updates)
		CommitToFinished: 5 * time.Millisecond,
		CommitPerObject:  time.Millisecond,
	}
	rec := newStatusRecorder()
	e := newEnv(t, cvatsim.Options{Profile: prof, Clock: newFakeClock(true), OnRequestStatus: rec.hook})
	id := e.createTask(map[string]any{"name": "ten", "segment_size": 4})
	files := make([]file, 10)
	for i := range files {
		files[i] = file{name: fmt.Sprintf("img_%02d.png", i), data: pngImage(640, 480, uint8(i))}
	}
	rq := e.uploadSingle(id, map[string]string{"image_quality": "70"}, files)
	rec.waitFor(t, rq, "finished", 1)
	tl, _ := e.s.Timeline(id)
	if pick := tl.StartedAt.Sub(tl.EnqueuedAt); pick != 19*time.Millisecond {
		t.Fatalf("pick-up %v, want 19ms", pick)
	}
	// 40 fixed + 10 images × 1 + 3 jobs × 5 + preview of job 0's 4 frames at q70 (4 + 6·60/90 = 8 ms each)
	// + 100 to the commit.
	if proc, want := tl.JobsVisibleAt.Sub(tl.StartedAt), (40+10+15+32+100)*time.Millisecond; proc != want {
		t.Fatalf("started -> visible %v, want %v", proc, want)
	}
	if d := tl.FinishedAt.Sub(tl.JobsVisibleAt); d != 10*time.Millisecond {
		t.Fatalf("commit to finished %v, want 10ms", d)
	}
	// Job rows are stamped as inserted: 5, 10, 15 ms into the job phase, which starts 50 ms after started.
	var page struct {
		Results []struct {
			ID          int    `json:"id"`
			CreatedDate string `json:"created_date"`
		} `json:"results"`
	}
	e.must(200, e.do("GET", fmt.Sprintf("/api/jobs?task_id=%d&page_size=all&sort=id", id), nil, nil)).json(t, &page)
	if len(page.Results) != 3 {
		t.Fatalf("jobs %+v", page.Results)
	}
	for i, j := range page.Results {
		created, err := time.Parse(time.RFC3339Nano, j.CreatedDate)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := created.Sub(tl.StartedAt), time.Duration(50+5*(i+1))*time.Millisecond; got != want {
			t.Errorf("job %d created %v after started, want %v", j.ID, got, want)
		}
	}
}

func TestConcurrentCreationsStretchProcessing(t *testing.T) {
	// Stretch 0.5: a phase that starts while another creation processes takes 1.5× as long. A starts alone
	// (100 ms); B starts while A runs (150 ms).
	prof := cvatsim.Profile{Name: "stretch", Processing: cvatsim.Dist{Base: 100 * time.Millisecond}, ConcurrencyStretch: 0.5}
	rec := newStatusRecorder()
	clk := newFakeClock(false)
	e := newEnv(t, cvatsim.Options{Profile: prof, Clock: clk, OnRequestStatus: rec.hook})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, b := e.createTask(map[string]any{"name": "a"}), e.createTask(map[string]any{"name": "b"})
	rqA := e.uploadSingle(a, map[string]string{"image_quality": "70"}, images(1))
	rec.waitFor(t, rqA, "started", 1)
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	rqB := e.uploadSingle(b, map[string]string{"image_quality": "70"}, images(1))
	rec.waitFor(t, rqB, "started", 1)
	if err := clk.BlockUntil(ctx, 2); err != nil {
		t.Fatal(err)
	}
	clk.Advance(100 * time.Millisecond)
	rec.waitFor(t, rqA, "finished", 1)
	clk.Advance(50 * time.Millisecond)
	rec.waitFor(t, rqB, "finished", 1)
	for id, want := range map[int]time.Duration{a: 100 * time.Millisecond, b: 150 * time.Millisecond} {
		tl, _ := e.s.Timeline(id)
		if d := tl.JobsVisibleAt.Sub(tl.StartedAt); d != want {
			t.Errorf("task %d processed in %v, want %v", id, d, want)
		}
	}
}

func TestDeleteDuringProcessingWaitsForRowLock(t *testing.T) {
	tests := []struct {
		name       string
		processing time.Duration
		advance    time.Duration
		status     int
	}{
		{"worker commits within 10 s", time.Second, time.Second, 204},
		{"worker holds the lock past 10 s", 20 * time.Second, 10 * time.Second, 409},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newStatusRecorder()
			e, clk := heldEnv(t, rec, func(o *cvatsim.Options) {
				o.Profile.PickUp = cvatsim.Dist{}
				o.Profile.Processing = cvatsim.Dist{Base: tc.processing}
			})
			id := e.createTask(map[string]any{"name": "busy"})
			rq := e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(1))
			rec.waitFor(t, rq, "started", 1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := clk.BlockUntil(ctx, 1); err != nil { // the worker's processing wait
				t.Fatal(err)
			}
			done := make(chan resp, 1)
			go func() { done <- e.do("DELETE", fmt.Sprintf("/api/tasks/%d", id), nil, nil) }()
			if err := clk.BlockUntil(ctx, 2); err != nil { // plus the delete's lock timeout
				t.Fatal(err)
			}
			clk.Advance(tc.advance)
			select {
			case r := <-done:
				if r.status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
				}
			case <-ctx.Done():
				t.Fatal("delete did not return")
			}
		})
	}
}
