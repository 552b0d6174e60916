package cvat_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/cvat"
)

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     cvat.Config
		wantErr string
	}{
		{"ok", cvat.Config{BaseURL: "http://127.0.0.1:8080"}, ""},
		{"trailing slash tolerated", cvat.Config{BaseURL: "http://127.0.0.1:8080/"}, ""},
		{"path prefix", cvat.Config{BaseURL: "https://example.com/cvat"}, ""},
		{"empty", cvat.Config{}, "scheme"},
		{"no scheme", cvat.Config{BaseURL: "localhost:8080"}, "scheme"},
		{"api suffix", cvat.Config{BaseURL: "http://h/api/"}, "/api suffix"},
		{"user info", cvat.Config{BaseURL: "http://u:secret@h"}, "credentials"},
		{"negative timeout", cvat.Config{BaseURL: "http://h", CallTimeout: -1}, "negative"},
		{"negative retry", cvat.Config{BaseURL: "http://h", Retry: cvat.RetryPolicy{MaxAttempts: -1}}, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cvat.New(tc.cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	tests := []struct {
		name     string
		auth     cvat.Auth
		org      string
		wantAuth string
	}{
		{"basic", cvat.Basic("admin", "p@ss:word"), "", "Basic YWRtaW46cEBzczp3b3Jk"},
		{"token", cvat.Token("abc123"), "", "Token abc123"},
		{"bearer", cvat.Bearer("pat-xyz"), "", "Bearer pat-xyz"},
		{"anonymous", nil, "", ""},
		{"organization", cvat.Bearer("pat-xyz"), "acme", "Bearer pat-xyz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got http.Header
			c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.Header.Clone()
				writeJSON(w, 200, `{"id":1,"username":"admin"}`)
			}), false, func(cfg *cvat.Config) { cfg.Auth, cfg.Org = tc.auth, tc.org })
			if _, err := c.Self(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"Authorization": tc.wantAuth, "X-Organization": tc.org,
				"Accept": "application/vnd.cvat+json", "User-Agent": "cvatbench", "Cookie": ""}
			for k, v := range want {
				if got.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, got.Get(k), v)
				}
			}
		})
	}
}

// TestLoginSendsNoCookies: CVAT's login sets session cookies; if the client sent them back, session auth would
// win over the Authorization header and enforce CSRF on every POST (API.md §2.2).
func TestLoginSendsNoCookies(t *testing.T) {
	var cookies atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/auth/login", func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 200)
		n, _ := r.Body.Read(b)
		if string(b[:n]) != `{"password":"s3cret","username":"admin"}` {
			http.SetCookie(w, &http.Cookie{Name: "csrftoken", Value: "x"})
			writeJSON(w, 400, `{"non_field_errors":["Unable to log in with provided credentials."]}`)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: "s", Path: "/"})
		http.SetCookie(w, &http.Cookie{Name: "csrftoken", Value: "c", Path: "/"})
		writeJSON(w, 200, `{"key":"k40"}`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") != "" {
			cookies.Add(1)
		}
		if r.Header.Get("Authorization") != "Token k40" {
			writeJSON(w, 401, `{"detail":"Invalid token."}`)
			return
		}
		if r.Method == http.MethodPost {
			writeJSON(w, 201, `{"id":3,"name":"p"}`)
			return
		}
		writeJSON(w, 200, `{"id":1,"username":"admin"}`)
	})
	_, srv := newClient(t, mux, false, nil)
	ctx := context.Background()

	if _, err := cvat.Login(ctx, srv.URL, "admin", "wrong-pw", nil); !errors.Is(err, cvat.ErrBadRequest) ||
		strings.Contains(err.Error(), "wrong-pw") || !strings.Contains(err.Error(), "Unable to log in") {
		t.Fatalf("bad login: %v, want a 400 with CVAT's message and no password", err)
	}
	key, err := cvat.Login(ctx, srv.URL, "admin", "s3cret", nil)
	if err != nil || key != "k40" {
		t.Fatalf("login = %q, %v", key, err)
	}
	c, err := cvat.New(cvat.Config{BaseURL: srv.URL, Auth: cvat.Token(key)}) // default HTTP client
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Self(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateProject(ctx, cvat.ProjectSpec{Name: "p"}); err != nil {
		t.Fatal(err)
	}
	if n := cookies.Load(); n != 0 {
		t.Fatalf("%d requests carried cookies", n)
	}
}

func TestSecretsAreNotPrinted(t *testing.T) {
	const secret = "hunter2-SECRET"
	auths := []cvat.Auth{cvat.Basic("admin", secret), cvat.Token(secret), cvat.Bearer(secret)}
	for _, a := range auths {
		t.Run(a.String(), func(t *testing.T) {
			cfg := cvat.Config{BaseURL: "http://127.0.0.1:1", Auth: a, Org: "acme"}
			c, err := cvat.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
				for name, v := range map[string]any{"auth": a, "config": cfg, "&config": &cfg, "client": c} {
					if out := fmt.Sprintf(verb, v); strings.Contains(out, secret) || strings.Contains(out, fmt.Sprintf("%x", secret)) {
						t.Errorf("%s printed with %s leaks the secret: %s", name, verb, out)
					}
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := c.Self(ctx); err == nil || strings.Contains(err.Error(), secret) {
				t.Errorf("error %v leaks the secret or is nil", err)
			}
		})
	}
}

func TestGetRequestEscapesRqID(t *testing.T) {
	tests := []struct{ id, wantRaw string }{
		{"action=create&target=task&target_id=42", "action%3Dcreate%26target%3Dtask%26target_id%3D42"},
		{"create:task-42", "create%3Atask-42"},
		{"action=export&target=task&target_id=1&format=CVAT_for_images_1~1", "action%3Dexport%26target%3Dtask%26target_id%3D1%26format%3DCVAT_for_images_1~1"},
		{"a b/c?d#e%f+g", "a%20b%2Fc%3Fd%23e%25f%2Bg"},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			var log callLog
			c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.EscapedPath() != "/api/requests/"+tc.wantRaw || r.URL.Path != "/api/requests/"+tc.id {
					writeJSON(w, 404, "")
					t.Errorf("server saw path %q (raw %q)", r.URL.Path, r.URL.EscapedPath())
					return
				}
				writeJSON(w, 200, fmt.Sprintf(`{"id":%q,"status":"queued","message":"","operation":{"type":"create:task","target":"task","task_id":42},"created_date":"2026-08-20T10:00:01.204311Z"}`, tc.id))
			}), false, func(cfg *cvat.Config) { cfg.OnCall = log.add })
			got, err := c.GetRequest(context.Background(), tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tc.id || got.Status != cvat.StatusQueued {
				t.Errorf("got %+v", got)
			}
			if calls := log.all(); len(calls) != 1 || calls[0].Endpoint != "/api/requests/{rq_id}" {
				t.Errorf("calls %+v, want one to /api/requests/{rq_id}", calls)
			}
		})
	}
}

// scripted answers the i-th request with steps[min(i, last)].
type step struct {
	status     int
	retryAfter string
	hangup     bool // close the connection without answering
}

func scripted(t *testing.T, hits *atomic.Int32, steps []step) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(hits.Add(1)) - 1
		s := steps[min(i, len(steps)-1)]
		if s.hangup {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
			return
		}
		if s.retryAfter != "" {
			w.Header().Set("Retry-After", s.retryAfter)
		}
		body := `{"id":7,"name":"t","jobs":{"count":0,"completed":0,"validation":0}}`
		if s.status >= 400 {
			body = `"Redis service is not available"`
		}
		writeJSON(w, s.status, body)
	}
}

func TestRetries(t *testing.T) {
	now := time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC)
	type window struct{ lo, hi time.Duration }
	getTask := func(ctx context.Context, c *cvat.Client) error { _, err := c.GetTask(ctx, 7); return err }
	createTask := func(ctx context.Context, c *cvat.Client) error {
		_, err := c.CreateTask(ctx, cvat.TaskSpec{Name: "t"})
		return err
	}
	deleteTask := func(ctx context.Context, c *cvat.Client) error { return c.DeleteTask(ctx, 7) }
	tests := []struct {
		name       string
		call       func(context.Context, *cvat.Client) error
		steps      []step
		timeout    time.Duration
		wantHits   int
		wantSleeps []window
		wantStatus int  // of the returned error
		wantErr    bool // an error is expected (implied by wantStatus)
	}{
		{"503 retry-after seconds", getTask, []step{{status: 503, retryAfter: "2"}, {status: 200}}, 0, 2,
			[]window{{2 * time.Second, 2 * time.Second}}, 0, false},
		{"429 retry-after date", getTask, []step{{status: 429, retryAfter: now.Add(3 * time.Second).Format(http.TimeFormat)}, {status: 200}}, 0, 2,
			[]window{{3 * time.Second, 3 * time.Second}}, 0, false},
		{"502 exponential backoff with jitter", getTask, []step{{status: 502}, {status: 502}, {status: 504}, {status: 200}}, 0, 4,
			[]window{{250 * time.Millisecond, 500 * time.Millisecond}, {500 * time.Millisecond, time.Second}, {time.Second, 2 * time.Second}}, 0, false},
		{"gives up after max attempts", getTask, []step{{status: 503}}, 0, 4,
			[]window{{250 * time.Millisecond, 500 * time.Millisecond}, {500 * time.Millisecond, time.Second}, {time.Second, 2 * time.Second}}, 503, false},
		{"transport error retried", getTask, []step{{hangup: true}, {status: 200}}, 0, 2,
			[]window{{250 * time.Millisecond, 500 * time.Millisecond}}, 0, false},
		{"delete retried", deleteTask, []step{{status: 503, retryAfter: "1"}, {status: 204}}, 0, 2,
			[]window{{time.Second, time.Second}}, 0, false},
		{"500 not retried", getTask, []step{{status: 500}}, 0, 1, nil, 500, false},
		{"404 not retried", getTask, []step{{status: 404}}, 0, 1, nil, 404, false},
		{"post never retried", createTask, []step{{status: 503, retryAfter: "1"}, {status: 201}}, 0, 1, nil, 503, false},
		{"post transport error not retried", createTask, []step{{hangup: true}, {status: 201}}, 0, 1, nil, 0, true},
		{"retry-after beyond deadline", getTask, []step{{status: 503, retryAfter: "60"}, {status: 200}}, 10 * time.Second, 1, nil, 503, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			var log callLog
			c, _ := newClient(t, scripted(t, &hits, tc.steps), false, func(cfg *cvat.Config) {
				cfg.OnCall, cfg.CallTimeout = log.add, tc.timeout
			})
			var sleeps []time.Duration
			cvat.SetSleep(c, func(_ context.Context, d time.Duration) error { sleeps = append(sleeps, d); return nil })
			cvat.SetNow(c, func() time.Time { return now })
			err := tc.call(context.Background(), c)
			if wantErr := tc.wantErr || tc.wantStatus != 0; (err != nil) != wantErr {
				t.Fatalf("error %v, want one: %v", err, wantErr)
			}
			if got := cvat.StatusOf(err); got != tc.wantStatus {
				t.Errorf("status of error %v = %d, want %d", err, got, tc.wantStatus)
			}
			if int(hits.Load()) != tc.wantHits || len(log.all()) != tc.wantHits {
				t.Errorf("server hits %d, calls %d, want %d", hits.Load(), len(log.all()), tc.wantHits)
			}
			if len(sleeps) != len(tc.wantSleeps) {
				t.Fatalf("sleeps %v, want %d in %v", sleeps, len(tc.wantSleeps), tc.wantSleeps)
			}
			for i, w := range tc.wantSleeps {
				if sleeps[i] < w.lo || sleeps[i] > w.hi {
					t.Errorf("sleep %d = %v, want in [%v, %v]", i, sleeps[i], w.lo, w.hi)
				}
			}
			for i, call := range log.all() {
				if call.Attempt != i+1 {
					t.Errorf("call %d has attempt %d", i, call.Attempt)
				}
			}
		})
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	var hits atomic.Int32
	c, _ := newClient(t, scripted(t, &hits, []step{{status: 503}}), false, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cvat.SetSleep(c, func(ctx context.Context, _ time.Duration) error { cancel(); return ctx.Err() })
	_, err := c.GetTask(ctx, 7)
	if !errors.Is(err, context.Canceled) || cvat.StatusOf(err) != 503 || hits.Load() != 1 {
		t.Fatalf("err %v after %d hits, want the 503 and context.Canceled after 1 hit", err, hits.Load())
	}
}

func TestCallDeadline(t *testing.T) {
	tests := []struct {
		name        string
		callTimeout time.Duration
		ctxTimeout  time.Duration
	}{
		{"call timeout", 20 * time.Millisecond, time.Hour},
		{"shorter context", time.Hour, 20 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var hits atomic.Int32
			c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}), false, func(cfg *cvat.Config) { cfg.CallTimeout = tc.callTimeout })
			defer close(release)
			ctx, cancel := context.WithTimeout(context.Background(), tc.ctxTimeout)
			defer cancel()
			_, err := c.GetTask(ctx, 1)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want context.DeadlineExceeded", err)
			}
			if hits.Load() != 1 {
				t.Errorf("%d attempts, want 1 (no retry after the deadline)", hits.Load())
			}
		})
	}
}

func TestCallObservers(t *testing.T) {
	var hits atomic.Int32
	steps := scripted(t, &hits, []step{{status: 503}, {status: 200}})
	mux := http.NewServeMux()
	mux.Handle("GET /api/tasks/7", steps)
	mux.HandleFunc("GET /api/jobs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"count":0,"next":null,"previous":null,"results":[]}`)
	})
	mux.HandleFunc("GET /api/requests/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(404)
		_, _ = w.Write([]byte("There is no request with specified id"))
	})
	var global, outer, inner callLog
	c, _ := newClient(t, mux, false, func(cfg *cvat.Config) { cfg.OnCall = global.add })
	ctx := cvat.WithCallObserver(context.Background(), outer.add)
	ctxInner := cvat.WithCallObserver(ctx, inner.add)

	if _, err := c.GetTask(ctxInner, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListJobs(ctxInner, cvat.JobsQuery{TaskID: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRequest(ctx, "action=create&target=task&target_id=7"); !errors.Is(err, cvat.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	count := func(l *callLog) map[string]int {
		m := map[string]int{}
		for _, c := range l.all() {
			m[fmt.Sprintf("%s %s %d", c.Method, c.Endpoint, c.Status)]++
			if c.Start.IsZero() || c.Duration < 0 {
				t.Errorf("call %+v lacks timing", c)
			}
		}
		return m
	}
	wantInner := map[string]int{"GET /api/tasks/{id} 503": 1, "GET /api/tasks/{id} 200": 1, "GET /api/jobs 200": 1}
	wantAll := map[string]int{"GET /api/tasks/{id} 503": 1, "GET /api/tasks/{id} 200": 1, "GET /api/jobs 200": 1,
		"GET /api/requests/{rq_id} 404": 1}
	for name, tc := range map[string]struct {
		log  *callLog
		want map[string]int
	}{"global": {&global, wantAll}, "outer": {&outer, wantAll}, "inner": {&inner, wantInner}} {
		if d := cmp.Diff(tc.want, count(tc.log)); d != "" {
			t.Errorf("%s observer counts (-want +got):\n%s", name, d)
		}
	}
	if calls := global.all(); calls[0].RequestID != "req-1" || calls[0].Err != nil {
		t.Errorf("first call %+v: want request id req-1 and no error", calls[0])
	}
}
