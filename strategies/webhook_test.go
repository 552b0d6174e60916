package strategies_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

const hookID = 7

// fakeHooks is the CVAT side of the webhook strategy's setup. Its ping really posts to the receiver, signed
// with the secret the strategy registered, like CVAT's synchronous ping (API.md §8.1).
type fakeHooks struct {
	version    string
	events     []string // WebhookEvents answer
	pingStatus int      // 0: post the ping and report the receiver's status; else report this without posting

	mu      sync.Mutex
	spec    cvat.WebhookSpec
	deleted []int
}

func (h *fakeHooks) About(context.Context) (cvat.About, error) {
	return cvat.About{Name: "Computer Vision Annotation Tool", Version: h.version}, nil
}

func (h *fakeHooks) WebhookEvents(context.Context, string) ([]string, error) { return h.events, nil }

// fakeProjectName is the name the runner gives a strategy's project.
const fakeProjectName = "cvatbench-20261127T001500Z-3f9a-webhook"

func (h *fakeHooks) GetProject(_ context.Context, id int) (cvat.Project, error) {
	return cvat.Project{ID: id, Name: fakeProjectName}, nil
}

func (h *fakeHooks) CreateWebhook(_ context.Context, spec cvat.WebhookSpec) (cvat.Webhook, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.spec = spec
	return cvat.Webhook{ID: hookID, TargetURL: spec.TargetURL, Type: spec.Type, Events: spec.Events}, nil
}

func (h *fakeHooks) PingWebhook(_ context.Context, id int) (cvat.WebhookDelivery, error) {
	status := h.pingStatus
	if status == 0 {
		status = h.post(map[string]any{"event": "ping", "webhook": map[string]any{"id": id},
			"sender": map[string]any{"id": 1, "username": "admin1"}})
	}
	return cvat.WebhookDelivery{ID: 1, WebhookID: id, Event: "ping", StatusCode: &status}, nil
}

func (h *fakeHooks) DeleteWebhook(_ context.Context, id int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deleted = append(h.deleted, id)
	return nil
}

func (h *fakeHooks) secret() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.spec.Secret
}

// post sends payload signed with the registered secret and returns the receiver's status (0: no answer).
func (h *fakeHooks) post(payload any) int {
	body, _ := json.Marshal(payload)
	return postRaw(h.spec.TargetURL, body, sign(h.secret(), body))
}

func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func postRaw(target string, body []byte, signature string) int {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("X-Signature-256", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func createJob(jobID, taskID int) map[string]any {
	return map[string]any{"event": "create:job", "webhook_id": hookID,
		"job": map[string]any{"url": "/api/jobs/1", "id": jobID, "task_id": taskID, "data_chunk_size": nil,
			"dimension": "", "mode": ""},
		"sender": map[string]any{"id": 1, "username": "admin1", "email": "admin1@example.com"}}
}

func updateTask(taskID, count int) map[string]any {
	return map[string]any{"event": "update:task", "webhook_id": hookID,
		"task":    map[string]any{"id": taskID, "jobs": map[string]any{"count": count, "completed": 0}},
		"changes": map[string]any{"media_type": map[string]any{"from": "", "to": "image"}}}
}

func completed(taskID int, status, message string) map[string]any {
	return map[string]any{"event": "completed:request[create:task]", "webhook_id": hookID,
		"request": map[string]any{"id": "action=create&target=task&target_id=42", "status": status,
			"message": message, "operation": map[string]any{"type": "create:task", "target": "task",
				"task_id": taskID}, "created_date": "2026-08-20T10:00:01.204311Z",
			"started_date": "2026-08-20T10:00:01.262087Z", "finished_date": "2026-08-20T10:00:01.839512Z"}}
}

// prepared returns a prepared webhook strategy for a server of the given version; Close runs at cleanup.
func prepared(t *testing.T, version string, safety time.Duration) (*strategies.Webhook, *fakeHooks) {
	t.Helper()
	p := strategies.DefaultParams()
	p.SafetyPoll = safety
	w, err := strategies.NewWebhook(p)
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHooks{version: version}
	if err := strategies.PrepareWith(context.Background(), w, h, 9); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w, h
}

type waitResult struct {
	out strategies.Outcome
	err error
}

// startWait runs Wait in a goroutine and returns once Wait either returned or armed its safety timer, which
// it does after registering the task and finding the buffered events insufficient.
func startWait(t *testing.T, w *strategies.Webhook, f *fakeAPI, clk *fakeClock) <-chan waitResult {
	t.Helper()
	res := make(chan waitResult, 1)
	done := make(chan waitResult, 1)
	go func() {
		out, err := w.Wait(context.Background(), f, clk, trial(f))
		done <- waitResult{out, err}
	}()
	select {
	case <-clk.armed:
		go func() { res <- <-done }()
	case r := <-done:
		res <- r
	case <-time.After(10 * time.Second): // a guard against a hang, not a condition wait
		t.Fatal("Wait neither returned nor armed its safety poll")
	}
	return res
}

func result(t *testing.T, res <-chan waitResult) waitResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return")
		return waitResult{}
	}
}

func TestWebhookPrepare(t *testing.T) {
	tests := []struct {
		name       string
		version    string
		events     []string
		wantEvents []string
	}{
		{"2.73 uses completed:request", "2.73.0", nil, []string{"create:job", "completed:request[create:task]"}},
		{"3.0 uses completed:request", "v3.0.1-dev", nil, []string{"create:job", "completed:request[create:task]"}},
		{"2.72 counts jobs", "2.72.1", nil, []string{"create:job", "update:task"}},
		{"unknown version with the event", "dev", []string{"create:job", "completed:request[create:task]"},
			[]string{"create:job", "completed:request[create:task]"}},
		{"unknown version without it", "dev", []string{"create:job", "update:task"},
			[]string{"create:job", "update:task"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := strategies.NewWebhook(strategies.DefaultParams())
			if err != nil {
				t.Fatal(err)
			}
			h := &fakeHooks{version: tc.version, events: tc.events}
			if err := strategies.PrepareWith(context.Background(), w, h, 9); err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			spec := h.spec
			if diff := cmp.Diff(tc.wantEvents, spec.Events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if spec.Type != "project" || spec.ProjectID == nil || *spec.ProjectID != 9 ||
				spec.ContentType != "application/json" || spec.EnableSSL == nil || *spec.EnableSSL ||
				spec.IsActive == nil || !*spec.IsActive {
				t.Errorf("spec %+v", spec)
			}
			if spec.Description != fakeProjectName { // cleanup finds leftover webhooks by it
				t.Errorf("description %q, want the project's name %q", spec.Description, fakeProjectName)
			}
			if _, err := hex.DecodeString(spec.Secret); err != nil || len(spec.Secret) != 64 {
				t.Errorf("secret is not 32 random bytes in hex (len %d)", len(spec.Secret))
			}
			if !strings.HasPrefix(spec.TargetURL, "http://127.0.0.1:") || !strings.HasSuffix(spec.TargetURL, "/hook") ||
				w.TargetURL() != spec.TargetURL {
				t.Errorf("target %q, TargetURL() %q", spec.TargetURL, w.TargetURL())
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]int{hookID}, h.deleted); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
			if code := h.post(map[string]any{"event": "ping", "webhook": map[string]any{"id": hookID}}); code != 0 {
				t.Errorf("receiver still answers after Close: %d", code)
			}
			if _, err := w.Wait(context.Background(), newFakeAPI(t, newAutoClock()), newAutoClock(), strategies.Trial{TaskID: 42}); err == nil {
				t.Error("Wait after Close succeeded")
			}
		})
	}
}

func TestWebhookPrepareFailures(t *testing.T) {
	t.Run("blocked ping", func(t *testing.T) {
		w, _ := strategies.NewWebhook(strategies.DefaultParams())
		h := &fakeHooks{version: "2.73.0", pingStatus: 502}
		err := strategies.PrepareWith(context.Background(), w, h, 9)
		if err == nil || !strings.Contains(err.Error(), "SMOKESCREEN_OPTS") || !strings.Contains(err.Error(), "502") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), h.secret()) {
			t.Error("the error contains the secret")
		}
		if diff := cmp.Diff([]int{hookID}, h.deleted); diff != "" {
			t.Errorf("the webhook was not removed (-want +got):\n%s", diff)
		}
		if w.TargetURL() != "" {
			t.Error("receiver still configured")
		}
	})
	t.Run("2xx from another server", func(t *testing.T) {
		w, _ := strategies.NewWebhook(strategies.DefaultParams())
		h := &fakeHooks{version: "2.73.0", pingStatus: 200}
		if err := strategies.PrepareWith(context.Background(), w, h, 9); err == nil ||
			!strings.Contains(err.Error(), "saw no ping") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no project", func(t *testing.T) {
		w, _ := strategies.NewWebhook(strategies.DefaultParams())
		h := &fakeHooks{version: "2.73.0"}
		if err := strategies.PrepareWith(context.Background(), w, h, 0); err == nil || h.spec.TargetURL != "" {
			t.Fatalf("err = %v, spec %+v", err, h.spec)
		}
	})
	t.Run("prepared twice", func(t *testing.T) {
		w, h := prepared(t, "2.73.0", time.Second)
		if err := strategies.PrepareWith(context.Background(), w, h, 9); err == nil {
			t.Fatal("second Prepare succeeded")
		}
	})
}

func TestWebhookReceiverRejects(t *testing.T) {
	w, h := prepared(t, "2.73.0", 10*time.Second)
	valid, _ := json.Marshal(completed(42, "finished", ""))
	otherHook := completed(42, "finished", "")
	otherHook["webhook_id"] = 99
	otherBody, _ := json.Marshal(otherHook)
	noTask, _ := json.Marshal(map[string]any{"event": "create:job", "webhook_id": hookID, "job": map[string]any{"id": 5}})
	big := append(bytes.Repeat([]byte(" "), 1<<20), valid...)
	tests := []struct {
		name   string
		method string
		body   []byte
		sig    string
		want   int
	}{
		{"no signature", http.MethodPost, valid, "", http.StatusUnauthorized},
		{"wrong secret", http.MethodPost, valid, sign("not-the-secret", valid), http.StatusUnauthorized},
		{"signature without sha256=", http.MethodPost, valid, strings.TrimPrefix(sign(h.secret(), valid), "sha256="), http.StatusUnauthorized},
		{"signature of another body", http.MethodPost, valid, sign(h.secret(), otherBody), http.StatusUnauthorized},
		{"not hex", http.MethodPost, valid, "sha256=zz", http.StatusUnauthorized},
		{"oversized", http.MethodPost, big, sign(h.secret(), big), http.StatusRequestEntityTooLarge},
		{"malformed json", http.MethodPost, []byte(`{"event":`), sign(h.secret(), []byte(`{"event":`)), http.StatusBadRequest},
		{"no event", http.MethodPost, []byte(`{}`), sign(h.secret(), []byte(`{}`)), http.StatusBadRequest},
		{"unknown webhook", http.MethodPost, otherBody, sign(h.secret(), otherBody), http.StatusBadRequest},
		{"create:job without task", http.MethodPost, noTask, sign(h.secret(), noTask), http.StatusBadRequest},
		{"GET", http.MethodGet, nil, "", http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, w.TargetURL(), bytes.NewReader(tc.body))
			if tc.sig != "" {
				req.Header.Set("X-Signature-256", tc.sig)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	// None of the rejected completed:request deliveries may count: the wait ends by the safety poll.
	clk := newAutoClock()
	f := newFakeAPI(t, clk)
	f.rqID, f.visibleAt, f.finishedAt = "", 15*time.Second, 15*time.Second
	tr := trial(f)
	tr.RqID = ""
	out, err := w.Wait(context.Background(), f, clk, tr)
	if err != nil || out.Signal != "safety-poll" {
		t.Fatalf("Wait = %+v, %v; want completion by the safety poll", out, err)
	}
	if got := postRaw(w.TargetURL(), valid, sign(h.secret(), valid)); got != http.StatusOK {
		t.Errorf("valid delivery answered %d", got)
	}
}

func TestWebhookWait(t *testing.T) {
	finishedReq := func(o strategies.Outcome) bool {
		return o.Request != nil && o.Request.Status == "finished" && o.Request.FinishedDate != nil &&
			o.Request.FinishedDate.Equal(time.Date(2026, 8, 20, 10, 0, 1, 839512000, time.UTC))
	}
	tests := []struct {
		name       string
		version    string
		before     []map[string]any // delivered before Wait registers
		during     []map[string]any // delivered while Wait blocks
		wantSignal string
		wantIDs    []int
		wantCalls  []string
		wantErr    func(error) bool
		check      func(strategies.Outcome) bool
		edit       func(*fakeAPI)
	}{
		{
			name: "first create:job while waiting: one listing returns every job", version: "2.73.0",
			during:     []map[string]any{createJob(101, 42)},
			wantSignal: "webhook:first-job", wantIDs: []int{101, 102},
			wantCalls: []string{"jobs(page=0,size=-1,sort=id)@0s"},
		},
		{
			name: "completed:request while waiting", version: "2.73.0",
			during:     []map[string]any{completed(42, "finished", "")},
			wantSignal: "webhook:completed:request", wantIDs: []int{101, 102},
			wantCalls: []string{"jobs(page=0,size=-1,sort=id)@0s"}, check: finishedReq,
		},
		{
			name: "early events are buffered", version: "2.73.0",
			before:     []map[string]any{createJob(101, 42), createJob(102, 42), completed(42, "finished", "")},
			wantSignal: "webhook:completed:request", wantIDs: []int{101, 102},
			wantCalls: []string{"jobs(page=0,size=-1,sort=id)@0s"}, check: finishedReq,
		},
		{
			name: "events of another task do not count", version: "2.73.0",
			before:     []map[string]any{completed(43, "failed", "boom"), createJob(201, 43)},
			during:     []map[string]any{completed(42, "finished", "")},
			wantSignal: "webhook:completed:request", wantIDs: []int{101, 102},
			wantCalls: []string{"jobs(page=0,size=-1,sort=id)@0s"},
		},
		{
			name: "failed completed:request", version: "2.73.0",
			during: []map[string]any{completed(42, "failed", "ValueError: Too many jobs\n")},
			wantErr: func(err error) bool {
				var rf *strategies.RequestFailedError
				return errors.As(err, &rf) && rf.Message == "ValueError: Too many jobs\n"
			},
		},
		{
			name: "old server: the first create:job is listed too", version: "2.72.0",
			before:     []map[string]any{updateTask(42, 0), createJob(103, 42)},
			wantSignal: "webhook:first-job", wantIDs: []int{101, 102},
			wantCalls: []string{"jobs(page=0,size=-1,sort=id)@0s"},
		},
		{
			// Not what CVAT does (it queues create:job at the commit), but a listing that comes back empty
			// must not end the wait: update:task's count and the create:job events still complete it.
			name: "empty listing on the first create:job: count equals create:job count", version: "2.72.0",
			edit:       func(f *fakeAPI) { f.visibleAt, f.finishedAt = time.Hour, time.Hour },
			before:     []map[string]any{updateTask(42, 0), createJob(103, 42)},
			during:     []map[string]any{createJob(101, 42), updateTask(42, 3), createJob(102, 42)},
			wantSignal: "webhook:create:job", wantIDs: []int{101, 102, 103},
			wantCalls: []string{"jobs(page=0,size=-1,sort=id)@0s"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, h := prepared(t, tc.version, 10*time.Second)
			for _, e := range tc.before {
				if code := h.post(e); code != http.StatusOK {
					t.Fatalf("early delivery answered %d", code)
				}
			}
			clk := newManualClock()
			f := newFakeAPI(t, clk)
			if tc.edit != nil {
				tc.edit(f)
			}
			res := startWait(t, w, f, clk)
			for _, e := range tc.during {
				if code := h.post(e); code != http.StatusOK {
					t.Fatalf("delivery answered %d", code)
				}
			}
			r := result(t, res)
			if tc.wantErr != nil {
				if r.err == nil || !tc.wantErr(r.err) || strategies.Classify(r.err) != "request_failed" {
					t.Fatalf("err = %v", r.err)
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.out.Signal != tc.wantSignal || !r.out.SeenAt.Equal(t0) {
				t.Errorf("signal %q at %v, want %q", r.out.Signal, r.out.SeenAt, tc.wantSignal)
			}
			if diff := cmp.Diff(tc.wantIDs, r.out.JobIDs); diff != "" {
				t.Errorf("JobIDs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCalls, f.log()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if tc.check != nil && !tc.check(r.out) {
				t.Errorf("Outcome %+v", r.out)
			}
		})
	}
}

// TestWebhookPartialCountWaits checks that jobs.count above the create:job events seen does not complete.
func TestWebhookPartialCountWaits(t *testing.T) {
	w, h := prepared(t, "2.72.0", 10*time.Second)
	h.post(createJob(101, 42))
	h.post(updateTask(42, 2))
	clk := newManualClock()
	f := newFakeAPI(t, clk)
	f.visibleAt = time.Hour
	res := startWait(t, w, f, clk)
	select {
	case r := <-res:
		t.Fatalf("Wait returned with one of two jobs: %+v, %v", r.out, r.err)
	default:
	}
	h.post(createJob(102, 42))
	r := result(t, res)
	if r.err != nil || r.out.Signal != "webhook:create:job" || !cmp.Equal(r.out.JobIDs, []int{101, 102}) {
		t.Fatalf("Wait = %+v, %v", r.out, r.err)
	}
}

func TestWebhookSafetyPoll(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*fakeAPI)
		wantCalls  []string
		wantSignal string
		wantErr    bool
	}{
		{
			name: "all deliveries lost: jobs found by the safety poll",
			edit: func(f *fakeAPI) { f.visibleAt, f.finishedAt = 25*time.Second, 25*time.Second },
			wantCalls: []string{"jobs(page=0,size=-1,sort=id)@10s", "rq@10s", "jobs(page=0,size=-1,sort=id)@20s",
				"rq@20s", "jobs(page=0,size=-1,sort=id)@30s"},
			wantSignal: "safety-poll",
		},
		{
			name: "failure without a delivery ends the wait",
			edit: func(f *fakeAPI) { f.finishedAt, f.failMsg = 15*time.Second, "boom" },
			wantCalls: []string{"jobs(page=0,size=-1,sort=id)@10s", "rq@10s", "jobs(page=0,size=-1,sort=id)@20s",
				"rq@20s"},
			wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := prepared(t, "2.73.0", 10*time.Second)
			clk := newAutoClock()
			f := newFakeAPI(t, clk)
			tc.edit(f)
			out, err := w.Wait(context.Background(), f, clk, trial(f))
			if diff := cmp.Diff(tc.wantCalls, f.log()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if tc.wantErr {
				if strategies.Classify(err) != "request_failed" {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || out.Signal != tc.wantSignal || !cmp.Equal(out.JobIDs, []int{101, 102}) ||
				!out.SeenAt.Equal(t0.Add(30*time.Second)) {
				t.Fatalf("Wait = %+v, %v", out, err)
			}
		})
	}
}

func TestWebhookConcurrentTasks(t *testing.T) {
	w, h := prepared(t, "2.73.0", 10*time.Second)
	clk42, clk43 := newManualClock(), newManualClock()
	f42, f43 := newFakeAPI(t, clk42), newFakeAPI(t, clk43)
	f43.taskID = 43
	res42 := startWait(t, w, f42, clk42)
	res43 := startWait(t, w, f43, clk43)
	h.post(completed(43, "finished", ""))
	if r := result(t, res43); r.err != nil || r.out.Signal != "webhook:completed:request" {
		t.Fatalf("task 43: %+v, %v", r.out, r.err)
	}
	select {
	case r := <-res42:
		t.Fatalf("task 42 completed by task 43's event: %+v, %v", r.out, r.err)
	default:
	}
	h.post(completed(42, "finished", ""))
	if r := result(t, res42); r.err != nil || r.out.Signal != "webhook:completed:request" {
		t.Fatalf("task 42: %+v, %v", r.out, r.err)
	}
	if len(f42.log()) != 1 || len(f43.log()) != 1 {
		t.Errorf("calls 42 %v, 43 %v", f42.log(), f43.log())
	}
}
