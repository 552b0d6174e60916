package cvatsim_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/cvatsim"
)

// rawEnv is an emulator behind httptest WITHOUT the schema validator: proxy 502 pages and dropped
// connections are not CVAT answers, so the validator would reject them by design.
func rawEnv(t *testing.T, opts cvatsim.Options) *env {
	t.Helper()
	if opts.Profile.Name == "" {
		opts.Profile = instantProfile(t)
	}
	s, err := cvatsim.New(opts)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		srv.Close()
	})
	return &env{t: t, s: s, srv: srv, url: srv.URL}
}

// setFaults switches faults on after the test's setup calls.
func (e *env) setFaults(spec string) {
	e.t.Helper()
	f, err := cvatsim.ParseFaults(spec)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.s.SetFaults(f); err != nil {
		e.t.Fatal(err)
	}
}

// try is do without failing on transport errors.
func (e *env) try(method, path string) (int, error) {
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", basicAdmin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func TestInvalidPageIsWrittenOnce(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	pid := int(e.must(201, e.do("POST", "/api/projects", []byte(`{"name":"p","labels":[{"name":"a"}]}`), nil)).obj(t)["id"].(float64))
	id := e.createTask(map[string]any{"name": "pages", "project_id": pid})
	e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(1))
	e.waitVisible(id)
	paths := []string{
		"/api/jobs?page=abc", "/api/jobs?page=99", "/api/jobs?page=0", fmt.Sprintf("/api/jobs?task_id=%d&page=2", id),
		"/api/tasks?page=abc", "/api/tasks?page=3", "/api/projects?page=2", "/api/requests?page=x",
		"/api/webhooks?page=2", "/api/labels?page=abc", fmt.Sprintf("/api/labels?project_id=%d&page=2", pid),
		"/api/auth/access_tokens?page=2",
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			r := e.do("GET", p, nil, nil)
			if r.status != http.StatusNotFound || string(r.body) != `{"detail":"Invalid page."}` {
				t.Fatalf("status %d body %q, want 404 with one detail", r.status, r.body)
			}
		})
	}
}

func TestListLabels(t *testing.T) {
	e := newEnv(t, cvatsim.Options{Users: []cvatsim.UserSpec{{Username: "u2", Password: "pw2"}}})
	pid := int(e.must(201, e.do("POST", "/api/projects", []byte(`{"name":"p","labels":[{"name":"car"},{"name":"bus"}]}`), nil)).obj(t)["id"].(float64))
	inProject := e.createTask(map[string]any{"name": "in project", "project_id": pid})
	own := e.createTask(map[string]any{"name": "own labels", "labels": []map[string]any{{"name": "tree"}}})
	e.uploadSingle(inProject, map[string]string{"image_quality": "70"}, images(1))
	jobID := e.waitVisible(inProject).JobIDs[0]

	type label struct {
		ID        int    `json:"id"`
		Name      string `json:"name"`
		ProjectID *int   `json:"project_id"`
		TaskID    *int   `json:"task_id"`
	}
	type page struct {
		Count   int     `json:"count"`
		Next    *string `json:"next"`
		Results []label `json:"results"`
	}
	names := func(p page) []string {
		var out []string
		for _, l := range p.Results {
			out = append(out, l.Name)
		}
		return out
	}
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"project", fmt.Sprintf("project_id=%d", pid), []string{"car", "bus"}},
		{"task in project uses the project's labels", fmt.Sprintf("task_id=%d&org=&page=1", inProject), []string{"car", "bus"}},
		{"task with own labels", fmt.Sprintf("task_id=%d", own), []string{"tree"}},
		{"job", fmt.Sprintf("job_id=%d", jobID), []string{"car", "bus"}},
		{"all visible", "", []string{"car", "bus", "tree"}},
		{"by name", "name=bus", []string{"bus"}},
		{"page size", fmt.Sprintf("project_id=%d&page_size=1", pid), []string{"car"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p page
			e.must(200, e.do("GET", "/api/labels?"+tc.query, nil, nil)).json(t, &p)
			if diff := cmp.Diff(tc.want, names(p)); diff != "" {
				t.Fatalf("labels (-want +got):\n%s", diff)
			}
		})
	}
	var p page
	e.must(200, e.do("GET", fmt.Sprintf("/api/labels?task_id=%d", own), nil, nil)).json(t, &p)
	if l := p.Results[0]; l.TaskID == nil || *l.TaskID != own || l.ProjectID != nil {
		t.Errorf("task label owner %+v", l)
	}
	errs := []struct {
		name   string
		query  string
		status int
	}{
		{"unknown task", "task_id=999", 404},
		{"two filters", fmt.Sprintf("task_id=%d&project_id=%d", own, pid), 400},
		{"not a number", "job_id=x", 400},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			e.must(tc.status, e.do("GET", "/api/labels?"+tc.query, nil, nil))
		})
	}
	t.Run("other user sees nothing of admin's", func(t *testing.T) {
		e.must(404, e.do("GET", fmt.Sprintf("/api/labels?project_id=%d", pid), nil, map[string]string{"Authorization": "Basic " + b64("u2:pw2")}))
		var mine page
		e.must(200, e.do("GET", "/api/labels", nil, map[string]string{"Authorization": "Basic " + b64("u2:pw2")})).json(t, &mine)
		if mine.Count != 0 {
			t.Fatalf("u2 sees %+v", mine)
		}
	})
}

func TestListAccessTokens(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	for _, body := range []string{`{"name":"ci","read_only":false}`, `{"name":"ro","read_only":true}`} {
		e.must(201, e.do("POST", "/api/auth/access_tokens", []byte(body), nil))
	}
	var p struct {
		Count   int              `json:"count"`
		Results []map[string]any `json:"results"`
	}
	e.must(200, e.do("GET", "/api/auth/access_tokens", nil, nil)).json(t, &p)
	if p.Count != 2 || p.Results[0]["name"] != "ro" || p.Results[1]["name"] != "ci" {
		t.Fatalf("tokens %+v", p)
	}
	for _, r := range p.Results {
		if _, leaked := r["value"]; leaked {
			t.Fatal("token value listed")
		}
	}
	e.must(200, e.do("GET", "/api/auth/access_tokens?read_only=true", nil, nil)).json(t, &p)
	if p.Count != 1 || p.Results[0]["name"] != "ro" {
		t.Fatalf("read-only filter %+v", p)
	}
}

func TestParseFaults(t *testing.T) {
	tests := []struct {
		spec    string
		want    cvatsim.Faults
		wantErr string
	}{
		{spec: "", want: cvatsim.Faults{}},
		{spec: "none", want: cvatsim.Faults{}},
		{spec: "http5xx=0.05, http429=0.02,reset=0.01", want: cvatsim.Faults{HTTP5xx: 0.05, HTTP429: 0.02, Reset: 0.01}},
		{spec: "spike=0.05:500ms,hookdelay=0.1:2s", want: cvatsim.Faults{Spike: 0.05, SpikeDelay: 500 * time.Millisecond, HookDelay: 0.1, HookDelayBy: 2 * time.Second}},
		{spec: "spike=1", want: cvatsim.Faults{Spike: 1, SpikeDelay: cvatsim.DefaultSpikeDelay}},
		{spec: "procfail=0.02,expire=0.01,hookdrop=0.1,hookdup=0.05,hookbadsig=0.02,redis503=0.01",
			want: cvatsim.Faults{ProcFail: 0.02, Expire: 0.01, HookDrop: 0.1, HookDup: 0.05, HookBadSig: 0.02, Redis503: 0.01}},
		{spec: "chaos,procfail=0,hookdelay=0.5:1ms", want: func() cvatsim.Faults {
			f := chaos(t)
			f.ProcFail, f.HookDelay, f.HookDelayBy = 0, 0.5, time.Millisecond
			return f
		}()},
		{spec: "bogus=0.1", wantErr: `unknown key "bogus" (valid: http5xx, http429, reset, spike, redis503, procfail, expire, hookdrop, hookdup, hookdelay, hookbadsig)`},
		{spec: "http5xx=abc", wantErr: "not a number in [0, 1]"},
		{spec: "http5xx=1.5", wantErr: "not a number in [0, 1]"},
		{spec: "http5xx=-0.1", wantErr: "not a number in [0, 1]"},
		{spec: "http5xx=NaN", wantErr: "not a number in [0, 1]"},
		{spec: "reset=0.1:2s", wantErr: "takes no duration"},
		{spec: "spike=0.1:fast", wantErr: "positive Go duration"},
		{spec: "spike=0.1:-1s", wantErr: "positive Go duration"},
		{spec: "flakey", wantErr: "not KEY=P nor a profile"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := cvatsim.ParseFaults(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("faults (-want +got):\n%s", diff)
			}
			back, err := cvatsim.ParseFaults(got.String())
			if err != nil || back != got {
				t.Fatalf("String %q parses to %+v, %v", got.String(), back, err)
			}
		})
	}
	if _, err := cvatsim.New(cvatsim.Options{Faults: cvatsim.Faults{Reset: 2}}); err == nil {
		t.Error("New accepted a probability of 2")
	}
	s, err := cvatsim.New(cvatsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetFaults(cvatsim.Faults{Spike: 0.5}); err == nil {
		t.Error("SetFaults accepted a spike without delay")
	}
}

func chaos(t *testing.T) cvatsim.Faults {
	t.Helper()
	spec, ok := cvatsim.FaultProfile("chaos")
	if !ok {
		t.Fatal("no chaos profile")
	}
	f, err := cvatsim.ParseFaults(spec)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestHTTPFaults(t *testing.T) {
	t.Run("http5xx answers like a proxy and the POST has no effect", func(t *testing.T) {
		e := rawEnv(t, cvatsim.Options{})
		e.setFaults("http5xx=1")
		for range 10 {
			r := e.do("POST", "/api/tasks", []byte(`{"name":"x"}`), nil)
			if r.status != 502 && r.status != 503 && r.status != 504 {
				t.Fatalf("status %d", r.status)
			}
			if r.header.Get("X-Request-Id") != "" || !strings.Contains(r.header.Get("Content-Type"), "text/html") ||
				!strings.Contains(string(r.body), "<center>nginx</center>") {
				t.Fatalf("not a proxy answer: %v %q", r.header, r.body)
			}
		}
		if n := e.s.TaskCount(); n != 0 {
			t.Fatalf("%d tasks created by failed POSTs", n)
		}
		if got := e.s.FaultCounts()["http5xx"]; got != 10 {
			t.Fatalf("counted %d faults", got)
		}
	})
	t.Run("http429 is DRF's throttle answer", func(t *testing.T) {
		e := newEnv(t, cvatsim.Options{}) // validated: 429 is a CVAT error status
		e.setFaults("http429=1")
		r := e.must(429, e.do("GET", "/api/jobs", nil, nil))
		if r.header.Get("Retry-After") != "1" || r.header.Get("X-Request-Id") == "" ||
			string(r.body) != `{"detail":"Request was throttled. Expected available in 1 second."}` {
			t.Fatalf("429 %v %s", r.header, r.body)
		}
	})
	t.Run("reset drops the connection and the POST has no effect", func(t *testing.T) {
		e := rawEnv(t, cvatsim.Options{})
		e.setFaults("reset=1")
		if st, err := e.try("POST", "/api/tasks"); err == nil {
			t.Fatalf("got status %d, want a transport error", st)
		}
		if n := e.s.TaskCount(); n != 0 {
			t.Fatalf("%d tasks", n)
		}
	})
	t.Run("redis503 only on the requests endpoints", func(t *testing.T) {
		e := newEnv(t, cvatsim.Options{})
		id := e.createTask(map[string]any{"name": "r"})
		rq := e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(1))
		e.waitVisible(id)
		e.setFaults("redis503=1")
		for _, p := range []string{"/api/requests", "/api/requests/" + strings.ReplaceAll(rq, "&", "%26")} {
			r := e.must(503, e.do("GET", p, nil, nil))
			if string(r.body) != `"Redis service is not available"` || r.header.Get("X-Request-Id") == "" {
				t.Fatalf("%s: %s", p, r.body)
			}
		}
		e.must(200, e.do("GET", fmt.Sprintf("/api/jobs?task_id=%d", id), nil, nil))
	})
	t.Run("spike delays the answer on the server clock", func(t *testing.T) {
		clk := newFakeClock(true)
		e := rawEnv(t, cvatsim.Options{Clock: clk})
		e.setFaults("spike=1:1h")
		before := clk.Now()
		e.must(200, e.do("GET", "/api/server/about", nil, nil))
		if got := clk.Now().Sub(before); got != time.Hour {
			t.Fatalf("clock moved %v, want the 1h spike", got)
		}
	})
	t.Run("emulator-only paths never fault", func(t *testing.T) {
		e := rawEnv(t, cvatsim.Options{})
		id := e.createTask(map[string]any{"name": "tl"})
		e.setFaults("reset=1,http5xx=1")
		if st, err := e.try("GET", fmt.Sprintf("/_cvatsim/tasks/%d/timeline", id)); err != nil || st != 200 {
			t.Fatalf("timeline: %d %v", st, err)
		}
	})
}

// TestFaultsAreSeeded: the same seed gives the same fault sequence to a sequential client, another seed
// another one.
func TestFaultsAreSeeded(t *testing.T) {
	seq := func(seed int64) []int {
		f, err := cvatsim.ParseFaults("http5xx=0.3,http429=0.2")
		if err != nil {
			t.Fatal(err)
		}
		e := rawEnv(t, cvatsim.Options{Seed: seed, Faults: f})
		var out []int
		for range 40 {
			st, err := e.try("GET", "/api/server/about")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, st)
		}
		return out
	}
	a, b, c := seq(7), seq(7), seq(8)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("different seeds, same faults: %v", a)
	}
	if !slices.Contains(a, 200) || !slices.Contains(a, 429) {
		t.Fatalf("mix not visible: %v", a)
	}
}

func TestProcessingFaults(t *testing.T) {
	t.Run("procfail fails the request with an OSError", func(t *testing.T) {
		rec := newStatusRecorder()
		e := newEnv(t, cvatsim.Options{OnRequestStatus: rec.hook})
		id := e.createTask(map[string]any{"name": "pf"})
		e.setFaults("procfail=1")
		rq := e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(2))
		rec.waitFor(t, rq, "failed", 1)
		got, st := e.request(rq)
		if st != 200 || got.Status != "failed" || got.Message != "OSError: [Errno 28] No space left on device\n" {
			t.Fatalf("request %d %+v", st, got)
		}
		if tl, _ := e.s.Timeline(id); !tl.Failed || len(tl.JobIDs) != 0 {
			t.Fatalf("timeline %+v", tl)
		}
	})
	t.Run("expire makes a finished request 404 at once", func(t *testing.T) {
		rec := newStatusRecorder()
		e := newEnv(t, cvatsim.Options{OnRequestStatus: rec.hook})
		id := e.createTask(map[string]any{"name": "ex"})
		e.setFaults("expire=1")
		rq := e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(2))
		rec.waitFor(t, rq, "finished", 1)
		if _, st := e.request(rq); st != 404 {
			t.Fatalf("status %d, want 404", st)
		}
		var jobs struct{ Count int }
		e.must(200, e.do("GET", fmt.Sprintf("/api/jobs?task_id=%d", id), nil, nil)).json(t, &jobs)
		if jobs.Count != 1 {
			t.Fatalf("jobs %d", jobs.Count)
		}
	})
}

// deliveryEvents lists a webhook's delivery rows, oldest first, as "event status task-name".
func (e *env) deliveryEvents(wid int) []string {
	e.t.Helper()
	var dl struct {
		Results []struct {
			Event      string `json:"event"`
			StatusCode int    `json:"status_code"`
			Request    struct {
				Task struct{ Name string } `json:"task"`
			} `json:"request"`
		}
	}
	e.must(200, e.do("GET", fmt.Sprintf("/api/webhooks/%d/deliveries?page_size=all", wid), nil, nil)).json(e.t, &dl)
	var out []string
	for i := len(dl.Results) - 1; i >= 0; i-- {
		r := dl.Results[i]
		out = append(out, fmt.Sprintf("%s %d %s", r.Event, r.StatusCode, r.Request.Task.Name))
	}
	return out
}

func TestWebhookFaults(t *testing.T) {
	const secret = "k"
	// A project webhook on create:task only; each case creates two tasks and reads what arrived.
	setup := func(t *testing.T, spec string) (*env, *receiver, int, int) {
		rcv := newReceiver(t, nil)
		e := newEnv(t, cvatsim.Options{WebhookRetryDelays: []time.Duration{time.Millisecond}})
		pid, wid := e.projectWithWebhook(rcv.srv.URL, secret, []string{"create:task"})
		e.setFaults(spec)
		return e, rcv, pid, wid
	}
	t.Run("hookdup sends every delivery twice, same body", func(t *testing.T) {
		e, rcv, pid, wid := setup(t, "hookdup=1")
		e.createTask(map[string]any{"name": "a", "project_id": pid})
		d1, d2 := rcv.next(t), rcv.next(t)
		if string(d1.body) != string(d2.body) {
			t.Fatalf("duplicate differs:\n%s\n%s", d1.body, d2.body)
		}
		verifySignature(t, d2, secret)
		if got := e.flushedDeliveries(rcv, pid, wid); !slices.Equal(got, []string{"create:task 200 a", "create:task 200 a"}) {
			t.Fatalf("deliveries %v", got)
		}
	})
	t.Run("hookbadsig signs wrongly and a 4xx is not retried", func(t *testing.T) {
		rcv := newReceiver(t, func(string, int) int { return 401 })
		e := newEnv(t, cvatsim.Options{WebhookRetryDelays: []time.Duration{time.Millisecond}})
		pid, wid := e.projectWithWebhook(rcv.srv.URL, secret, []string{"create:task"})
		e.setFaults("hookbadsig=1")
		e.createTask(map[string]any{"name": "a", "project_id": pid})
		if d := rcv.next(t); signatureValid(d, secret) || !strings.HasPrefix(d.header.Get("X-Signature-256"), "sha256=") {
			t.Fatalf("signature %q verifies or is malformed", d.header.Get("X-Signature-256"))
		}
		if got := e.flushedDeliveries(rcv, pid, wid); !slices.Equal(got, []string{"create:task 401 a"}) {
			t.Fatalf("deliveries %v", got)
		}
	})
	t.Run("hookdrop sends nothing and writes no row", func(t *testing.T) {
		// The fault is drawn when the worker takes the delivery from the queue: wait for the drop before the
		// flush turns the faults off, or the delivery may still be queued then and go out.
		dropped := make(chan struct{}, 1)
		rcv := newReceiver(t, nil)
		e := newEnv(t, cvatsim.Options{WebhookRetryDelays: []time.Duration{time.Millisecond}, Logf: func(format string, args ...any) {
			if strings.Contains(fmt.Sprintf(format, args...), "fault hookdrop") {
				select {
				case dropped <- struct{}{}:
				default:
				}
			}
		}})
		pid, wid := e.projectWithWebhook(rcv.srv.URL, secret, []string{"create:task"})
		e.setFaults("hookdrop=1")
		e.createTask(map[string]any{"name": "a", "project_id": pid})
		<-dropped
		if got := e.flushedDeliveries(rcv, pid, wid); len(got) != 0 {
			t.Fatalf("deliveries %v", got)
		}
	})
	t.Run("hookdelay lets later events overtake", func(t *testing.T) {
		clk := newFakeClock(false)
		rcv := newReceiver(t, nil)
		e := newEnv(t, cvatsim.Options{Clock: clk})
		pid, _ := e.projectWithWebhook(rcv.srv.URL, secret, []string{"create:task"})
		e.setFaults("hookdelay=1:1m")
		e.createTask(map[string]any{"name": "a", "project_id": pid})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := clk.BlockUntil(ctx, 1); err != nil { // a's delivery waits on the clock
			t.Fatal(err)
		}
		e.setFaults("none")
		e.createTask(map[string]any{"name": "b", "project_id": pid})
		if d := rcv.next(t); !strings.Contains(string(d.body), `"name": "b"`) {
			t.Fatalf("b did not overtake: %s", d.body)
		}
		clk.Advance(time.Minute)
		d := rcv.next(t)
		if !strings.Contains(string(d.body), `"name": "a"`) {
			t.Fatalf("a never came: %s", d.body)
		}
		verifySignature(t, d, secret)
	})
}

// flushedDeliveries creates one more task with faults off and waits for its delivery: the webhook worker is
// serial, so every earlier delivery row is written by then. It returns the rows before the flush.
func (e *env) flushedDeliveries(rcv *receiver, pid, wid int) []string {
	e.t.Helper()
	e.setFaults("none")
	e.createTask(map[string]any{"name": "flush", "project_id": pid})
	for {
		if d := rcv.next(e.t.(*testing.T)); strings.Contains(string(d.body), `"name": "flush"`) {
			break
		}
	}
	return slices.DeleteFunc(e.deliveryEvents(wid), func(r string) bool { return strings.HasSuffix(r, " flush") })
}

// signatureValid reports whether d carries the right X-Signature-256 for secret.
func signatureValid(d delivered, secret string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(d.body)
	return d.header.Get("X-Signature-256") == "sha256="+hex.EncodeToString(mac.Sum(nil))
}

// TestFaultsKeepAcceptedWork: under the chaos mix, every 201 task exists and every 202 upload ends finished
// or failed, and the server never answers 500.
func TestFaultsKeepAcceptedWork(t *testing.T) {
	f := chaos(t)
	f.Spike = 0 // no waiting on the real clock
	e := rawEnv(t, cvatsim.Options{Faults: f, Seed: 3})
	var created []int
	var accepted []int
	for i := range 30 {
		req, _ := http.NewRequest("POST", e.url+"/api/tasks", strings.NewReader(fmt.Sprintf(`{"name":"t%d"}`, i)))
		req.Header.Set("Authorization", basicAdmin)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			continue // reset
		}
		var body struct{ ID int }
		r := resp{status: res.StatusCode, body: mustRead(res)}
		if r.status == 500 {
			t.Fatalf("500: %s", r.body)
		}
		if r.status != 201 {
			continue
		}
		r.json(t, &body)
		created = append(created, body.ID)
		mp, ct := multipartBody(map[string]string{"image_quality": "70"}, images(1))
		ureq, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/tasks/%d/data", e.url, body.ID), strings.NewReader(string(mp)))
		ureq.Header.Set("Authorization", basicAdmin)
		ureq.Header.Set("Content-Type", ct)
		ures, err := http.DefaultClient.Do(ureq)
		if err != nil {
			continue
		}
		if ures.StatusCode == 202 {
			accepted = append(accepted, body.ID)
		}
		ures.Body.Close()
	}
	if len(created) == 0 || len(accepted) == 0 || len(created) == 30 {
		t.Fatalf("mix not effective: %d created, %d accepted of 30", len(created), len(accepted))
	}
	if n := e.s.TaskCount(); n != len(created) {
		t.Fatalf("%d tasks exist, %d got 201", n, len(created))
	}
	for _, id := range accepted {
		tl := e.waitVisible(id)
		if !tl.Failed && len(tl.JobIDs) == 0 {
			t.Fatalf("task %d neither failed nor has jobs: %+v", id, tl)
		}
	}
}

// syncClock fires every timer inside AfterFunc, before it returns: the most eager clock possible.
type syncClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *syncClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *syncClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	f()
	return func() bool { return false }
}

// TestTimerFiringAtOnceIsNotLost pins a bug of Server.afterFunc: a timer that fired before afterFunc had
// registered it looked stale to its own callback, which dropped it, so a delayed webhook delivery (or a
// retry, or a DELETE's lock timeout) could vanish when the clock fired early.
func TestTimerFiringAtOnceIsNotLost(t *testing.T) {
	rcv := newReceiver(t, nil)
	clk := &syncClock{now: time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC)}
	e := newEnv(t, cvatsim.Options{Clock: clk})
	pid, _ := e.projectWithWebhook(rcv.srv.URL, "k", []string{"create:task"})
	e.setFaults("hookdelay=1:1s")
	e.createTask(map[string]any{"name": "a", "project_id": pid})
	if d := rcv.next(t); d.event != "create:task" {
		t.Fatalf("delivery %s", d.event)
	}
}
