package cvatsim_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/cvatsim"
)

// delivered is one request the receiver got.
type delivered struct {
	header http.Header
	body   []byte
	event  string
}

// receiver is a webhook target; fail decides the status of each delivery.
type receiver struct {
	srv  *httptest.Server
	got  chan delivered
	mu   sync.Mutex
	fail func(event string, n int) int
	n    map[string]int
}

func newReceiver(t *testing.T, fail func(event string, n int) int) *receiver {
	r := &receiver{got: make(chan delivered, 1000), fail: fail, n: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var ev struct{ Event string }
		_ = json.Unmarshal(b, &ev)
		r.mu.Lock()
		r.n[ev.Event]++
		n := r.n[ev.Event]
		r.mu.Unlock()
		status := 200
		if r.fail != nil {
			status = r.fail(ev.Event, n)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "ok")
		r.got <- delivered{header: req.Header.Clone(), body: b, event: ev.Event}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next waits for the next delivery.
func (r *receiver) next(t *testing.T) delivered {
	t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivery")
	}
	return delivered{}
}

func (e *env) projectWithWebhook(target, secret string, events []string) (projectID, webhookID int) {
	e.t.Helper()
	p := e.must(201, e.do("POST", "/api/projects", []byte(`{"name":"cvatbench","labels":[{"name":"object"}]}`), nil)).obj(e.t)
	projectID = int(p["id"].(float64))
	w := e.must(201, e.do("POST", "/api/webhooks", mustJSON(map[string]any{
		"target_url": target, "type": "project", "project_id": projectID, "events": events, "secret": secret,
		"content_type": "application/json",
	}), nil)).obj(e.t)
	if _, ok := w["secret"]; ok {
		e.t.Fatal("secret returned")
	}
	if _, ok := w["last_status"]; ok {
		e.t.Fatal("last_status present before any delivery")
	}
	return projectID, int(w["id"].(float64))
}

func verifySignature(t *testing.T, d delivered, secret string) {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(d.body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); d.header.Get("X-Signature-256") != want {
		t.Fatalf("%s: signature %q, want %q", d.event, d.header.Get("X-Signature-256"), want)
	}
	if ua := d.header.Get("User-Agent"); ua != "CVAT/2.73.0 python-requests/2.32.4" {
		t.Fatalf("user agent %q", ua)
	}
	if ct := d.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
}

func TestWebhookEventOrderAndSignatures(t *testing.T) {
	rcv := newReceiver(t, nil)
	e := newEnv(t, cvatsim.Options{})
	const secret = "hush"
	events := []string{"create:task", "update:task", "create:job", "completed:request[create:task]", "delete:task", "delete:job"}
	pid, wid := e.projectWithWebhook(rcv.srv.URL, secret, events)

	ping := e.must(200, e.do("POST", fmt.Sprintf("/api/webhooks/%d/ping", wid), nil, nil)).obj(t)
	if ping["status_code"] != 200.0 || ping["event"] != "ping" {
		t.Fatalf("ping %v", ping)
	}
	if d := rcv.next(t); d.event != "ping" {
		t.Fatalf("first delivery %s", d.event)
	} else {
		verifySignature(t, d, secret)
	}

	id := e.createTask(map[string]any{"name": "hooked", "project_id": pid, "segment_size": 2})
	e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(5))
	want := []string{"create:task", "update:task", "update:task", "create:job", "create:job", "create:job", "update:task", "completed:request[create:task]"}
	var got []string
	var jobPayload, reqPayload map[string]any
	for len(got) < len(want) {
		d := rcv.next(t)
		verifySignature(t, d, secret)
		if !strings.HasPrefix(string(d.body), `{"event": "`+d.event+`", `) {
			t.Fatalf("body is not json.dumps style: %.80s", d.body)
		}
		got = append(got, d.event)
		switch d.event {
		case "create:job":
			if jobPayload == nil {
				_ = json.Unmarshal(d.body, &jobPayload)
			}
		case "completed:request[create:task]":
			_ = json.Unmarshal(d.body, &reqPayload)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("order %v, want %v", got, want)
	}
	job := jobPayload["job"].(map[string]any)
	if !strings.HasPrefix(job["url"].(string), "/api/jobs/") || job["task_name"] != nil || job["issues"] != nil {
		t.Fatalf("worker-built job payload %v", job)
	}
	if _, ok := jobPayload["sender"].(map[string]any)["email"]; !ok {
		t.Fatalf("worker sender %v", jobPayload["sender"])
	}
	rq := reqPayload["request"].(map[string]any)
	if rq["status"] != "finished" || reqPayload["webhook_id"] != float64(wid) {
		t.Fatalf("completed:request payload %v", reqPayload)
	}
	w := e.must(200, e.do("GET", fmt.Sprintf("/api/webhooks/%d", wid), nil, nil)).obj(t)
	if w["last_status"] != 200.0 {
		t.Fatalf("webhook after deliveries %v", w)
	}
	var dl struct{ Count int }
	e.must(200, e.do("GET", fmt.Sprintf("/api/webhooks/%d/deliveries?page_size=all", wid), nil, nil)).json(t, &dl)
	// The ping and every delivery before the last are recorded for sure.
	if dl.Count < len(want) || dl.Count > len(want)+1 {
		t.Fatalf("deliveries %d", dl.Count)
	}

	e.must(204, e.do("DELETE", fmt.Sprintf("/api/tasks/%d", id), nil, nil))
	for _, ev := range []string{"delete:job", "delete:job", "delete:job", "delete:task"} {
		if d := rcv.next(t); d.event != ev {
			t.Fatalf("delete order: got %s, want %s", d.event, ev)
		}
	}
}

func TestWebhookNoProjectNoEvents(t *testing.T) {
	rcv := newReceiver(t, nil)
	e := newEnv(t, cvatsim.Options{})
	_, wid := e.projectWithWebhook(rcv.srv.URL, "", []string{"create:task", "completed:request[create:task]"})
	id := e.createTask(map[string]any{"name": "sandbox"})
	e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(1))
	e.waitVisible(id)
	e.must(200, e.do("POST", fmt.Sprintf("/api/webhooks/%d/ping", wid), nil, nil))
	d := rcv.next(t)
	if d.event != "ping" {
		t.Fatalf("a sandbox task produced %s", d.event)
	}
	if d.header.Get("X-Signature-256") != "" {
		t.Fatal("signature without a secret")
	}
}

func TestWebhookRetries(t *testing.T) {
	rcv := newReceiver(t, func(event string, n int) int {
		if event == "create:task" && n == 1 {
			return 503
		}
		return 200
	})
	clk := newFakeClock(false)
	e := newEnv(t, cvatsim.Options{Clock: clk, WebhookRetryDelays: []time.Duration{5 * time.Second}})
	pid, wid := e.projectWithWebhook(rcv.srv.URL, "k", []string{"create:task"})
	e.createTask(map[string]any{"name": "flaky", "project_id": pid})
	if d := rcv.next(t); d.event != "create:task" {
		t.Fatalf("first %s", d.event)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Second)
	if d := rcv.next(t); d.event != "create:task" {
		t.Fatalf("retry %s", d.event)
	}
	// The worker is serial: once a later event arrives, the retry's delivery
	// row has been written.
	e.createTask(map[string]any{"name": "later", "project_id": pid})
	rcv.next(t)
	var dl struct {
		Results []struct {
			StatusCode int `json:"status_code"`
			Attempt    int
		}
	}
	e.must(200, e.do("GET", fmt.Sprintf("/api/webhooks/%d/deliveries", wid), nil, nil)).json(t, &dl)
	n := len(dl.Results)
	if n < 2 || dl.Results[n-2].Attempt != 2 || dl.Results[n-2].StatusCode != 200 || dl.Results[n-1].StatusCode != 503 || dl.Results[n-1].Attempt != 1 {
		t.Fatalf("deliveries %+v", dl.Results)
	}
}

func TestWebhookValidation(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	p := e.must(201, e.do("POST", "/api/projects", []byte(`{"name":"p"}`), nil)).obj(t)
	pid := p["id"].(float64)
	tests := []struct {
		name   string
		body   map[string]any
		status int
	}{
		{"no dotted host", map[string]any{"target_url": "http://receiver:8080", "type": "project", "project_id": pid, "events": []string{"create:job"}}, 400},
		{"org event on project", map[string]any{"target_url": "http://a.example", "type": "project", "project_id": pid, "events": []string{"update:organization"}}, 400},
		{"unknown event", map[string]any{"target_url": "http://a.example", "type": "project", "project_id": pid, "events": []string{"nope"}}, 400},
		{"organization in sandbox", map[string]any{"target_url": "http://a.example", "type": "organization", "events": []string{"create:job"}}, 500}, // as 2.73.0 answers
		{"ok localhost", map[string]any{"target_url": "http://localhost:9/x", "type": "project", "project_id": pid, "events": []string{"create:job"}}, 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.must(tc.status, e.do("POST", "/api/webhooks", mustJSON(tc.body), nil))
		})
	}
	var evs struct {
		WebhookType string `json:"webhook_type"`
		Events      []struct {
			Key   string
			Group struct {
				DisplayName string `json:"display_name"`
			}
		}
	}
	e.must(200, e.do("GET", "/api/webhooks/events?type=project", nil, nil)).json(t, &evs)
	found := false
	for _, ev := range evs.Events {
		if ev.Key == "completed:request[create:task]" && ev.Group.DisplayName == "Task data creation" {
			found = true
		}
		if ev.Key == "update:organization" {
			t.Fatal("organization event offered to project webhooks")
		}
	}
	if !found || evs.WebhookType != "project" {
		t.Fatalf("events %+v", evs)
	}
	e.must(400, e.do("GET", "/api/webhooks/events?type=bogus", nil, nil))
}

func TestPingReportsReceiverFailure(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	_, wid := e.projectWithWebhook("http://127.0.0.1:1/", "", []string{"create:job"})
	d := e.must(200, e.do("POST", fmt.Sprintf("/api/webhooks/%d/ping", wid), nil, nil)).obj(t)
	if d["status_code"] != 502.0 {
		t.Fatalf("ping to a closed port: %v", d)
	}
}
