package strategies_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

func ids(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func trial(f *fakeAPI) strategies.Trial {
	return strategies.Trial{TaskID: f.taskID, RqID: f.rqID, ProjectID: 9, Images: 4, UploadedAt: t0}
}

func mustNew(t *testing.T, name string, p strategies.Params) strategies.Strategy {
	t.Helper()
	s, err := strategies.New(name, p)
	if err != nil {
		t.Fatalf("New(%q): %v", name, err)
	}
	return s
}

func TestRegistry(t *testing.T) {
	want := []string{"busyloop", "poll", "sdk", "cli", "ui", "backoff", "webhook", "adaptive", "project-poll", "project-webhook", "prealloc"}
	if diff := cmp.Diff(want, strategies.Names()); diff != "" {
		t.Fatalf("Names() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[:8], strategies.Defaults()); diff != "" {
		t.Fatalf("Defaults() leave out the project-level and what-if strategies (-want +got):\n%s", diff)
	}
	for _, name := range want {
		t.Run(name, func(t *testing.T) {
			s := mustNew(t, name, strategies.DefaultParams())
			if s.Name() != name {
				t.Errorf("Name() = %q", s.Name())
			}
			for _, r := range name {
				if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
					t.Errorf("name %q has character %q outside [a-z0-9_-]", name, r)
				}
			}
		})
	}
	_, err := strategies.New("polling", strategies.DefaultParams())
	if err == nil || !strings.Contains(err.Error(), strings.Join(want, ", ")) {
		t.Errorf("New(unknown) error %v does not list the valid names", err)
	}
}

func TestNewRejectsBadParams(t *testing.T) {
	tests := []struct {
		name     string
		strategy string
		edit     func(*strategies.Params)
		want     []string
	}{
		{"zero poll interval", "poll", func(p *strategies.Params) { p.PollInterval = 0 }, []string{"poll interval"}},
		{"negative sdk period", "sdk", func(p *strategies.Params) { p.SDKPeriod = -time.Second }, []string{"sdk period"}},
		{"zero cli period", "cli", func(p *strategies.Params) { p.CLIPeriod = 0 }, []string{"cli period"}},
		{"backoff all wrong", "backoff", func(p *strategies.Params) {
			p.BackoffInitial, p.BackoffMax, p.BackoffFactor, p.BackoffJitter = 0, -1, 0.5, 1
		}, []string{"backoff initial", "backoff max", "backoff factor", "backoff jitter"}},
		{"backoff max below initial", "backoff", func(p *strategies.Params) { p.BackoffMax = time.Millisecond },
			[]string{"backoff max"}},
		{"webhook", "webhook", func(p *strategies.Params) {
			p.SafetyPoll, p.WebhookListen, p.WebhookURL = 0, "nohostport", "ftp://x"
		}, []string{"safety poll", "listen address", "webhook url"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := strategies.DefaultParams()
			tc.edit(&p)
			_, err := strategies.New(tc.strategy, p)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"deadline", fmt.Errorf("get request: %w", context.DeadlineExceeded), "timeout"},
		{"deadline inside url error", &url.Error{Op: "Get", URL: "x", Err: context.DeadlineExceeded}, "timeout"},
		{"canceled", fmt.Errorf("wait: %w", context.Canceled), "canceled"},
		{"request failed", fmt.Errorf("x: %w", &strategies.RequestFailedError{Message: "boom"}), "request_failed"},
		{"404", fmt.Errorf("x: %w", &cvat.APIError{Status: 404}), "http_4xx"},
		{"cancelled by ui", fmt.Errorf("%w: %w", strategies.ErrCancelled, &cvat.APIError{Status: 404}), "request_expired"},
		{"request expired", fmt.Errorf("%w: %w", strategies.ErrRequestExpired, &cvat.APIError{Status: 404}), "request_expired"},
		{"throttled", &cvat.APIError{Status: 429}, "http_429"},
		{"reset", fmt.Errorf("GET /api/jobs: %w", syscall.ECONNRESET), "transport"},
		{"closed mid-answer", fmt.Errorf("GET /api/jobs: read response: %w", io.ErrUnexpectedEOF), "transport"},
		{"503", &cvat.APIError{Status: 503}, "http_5xx"},
		{"transport", fmt.Errorf("GET /api/jobs: %w", &url.Error{Op: "Get", URL: "x",
			Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}), "transport"},
		{"other", errors.New("something"), "other"},
		{"no jobs", strategies.ErrNoJobs, "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := strategies.Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"502", &cvat.APIError{Status: 502}, true},
		{"503", &cvat.APIError{Status: 503}, true},
		{"504", &cvat.APIError{Status: 504}, true},
		{"500 is a bug, not a hiccup", &cvat.APIError{Status: 500}, false},
		{"429", &cvat.APIError{Status: 429}, true},
		{"400", &cvat.APIError{Status: 400}, false},
		{"reset", fmt.Errorf("POST /api/projects: %w", &url.Error{Op: "Post", URL: "x", Err: syscall.ECONNRESET}), true},
		{"deadline", context.DeadlineExceeded, false},
		{"request failed", &strategies.RequestFailedError{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := strategies.Transient(tc.err); got != tc.want {
				t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestAllStrategiesReturnCompleteAscendingIDs runs every polling strategy on one scenario: 23 jobs visible
// at 6.9 s, request finished at 7 s.
func TestAllStrategiesReturnCompleteAscendingIDs(t *testing.T) {
	for _, name := range strategies.Defaults() {
		if name == "webhook" {
			continue // needs Prepare; see webhook_test.go
		}
		t.Run(name, func(t *testing.T) {
			clk := newAutoClock()
			f := newFakeAPI(t, clk)
			f.latency = time.Millisecond
			f.jobs, f.visibleAt, f.startedAt, f.finishedAt = 23, 6900*time.Millisecond, time.Second, 7*time.Second
			out, err := mustNew(t, name, strategies.DefaultParams()).Wait(context.Background(), f, clk, trial(f))
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if diff := cmp.Diff(ids(101, 123), out.JobIDs); diff != "" {
				t.Errorf("JobIDs (-want +got):\n%s", diff)
			}
			if out.SeenAt.Before(t0.Add(f.visibleAt)) || !out.SeenAt.Equal(clk.Now()) {
				t.Errorf("SeenAt %v, jobs visible at %v, clock %v", out.SeenAt, t0.Add(f.visibleAt), clk.Now())
			}
			// adaptive lists the jobs itself once the request started, so its last status seen is "started".
			polls := name != "busyloop" && name != "poll" && name != "adaptive"
			if polls && (out.Request == nil || out.Request.Status != cvat.StatusFinished) {
				t.Errorf("Request = %+v, want the finished request", out.Request)
			}
			if name == "adaptive" && (out.Request == nil || out.Request.StartedDate == nil) {
				t.Errorf("Request = %+v, want the started request", out.Request)
			}
		})
	}
}

// TestAllStrategiesHonourCancel cancels the context from inside the 20th API call of a creation that never
// ends: every strategy must stop with context.Canceled instead of polling on.
func TestAllStrategiesHonourCancel(t *testing.T) {
	for _, name := range strategies.Defaults() {
		if name == "webhook" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			clk := newAutoClock()
			f := newFakeAPI(t, clk)
			f.latency = time.Millisecond
			f.visibleAt, f.finishedAt, f.startedAt = 1000*time.Hour, 1000*time.Hour, 1000*time.Hour
			f.maxCalls = 1000
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f.onCall = func(n int) {
				if n == 20 {
					cancel()
				}
			}
			_, err := mustNew(t, name, strategies.DefaultParams()).Wait(ctx, f, clk, trial(f))
			if !errors.Is(err, context.Canceled) || strategies.Classify(err) != "canceled" {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if n := len(f.log()); n != 20 {
				t.Errorf("%d calls, want 20 (no call after the cancel)", n)
			}
		})
	}
}

func TestBusyLoop(t *testing.T) {
	clk := newAutoClock()
	f := newFakeAPI(t, clk)
	f.latency, f.visibleAt = time.Millisecond, 5*time.Millisecond
	out, err := strategies.NewBusyLoop().Wait(context.Background(), f, clk, trial(f))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 1; i <= 5; i++ {
		want = append(want, fmt.Sprintf("jobs(page=0,size=-1,sort=id)@%dms", i))
	}
	if diff := cmp.Diff(want, f.log()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if len(clk.sleepLog()) != 0 {
		t.Errorf("busyloop slept: %v", clk.sleepLog())
	}
	want2 := strategies.Outcome{JobIDs: []int{101, 102}, SeenAt: t0.Add(5 * time.Millisecond), Signal: "jobs-list"}
	if diff := cmp.Diff(want2, out); diff != "" {
		t.Errorf("Outcome (-want +got):\n%s", diff)
	}
}

func TestPolling(t *testing.T) {
	tests := []struct {
		name      string
		interval  time.Duration
		visibleAt time.Duration
		want      []string
	}{
		{"visible at once", 100 * time.Millisecond, 0, []string{"jobs(page=0,size=-1,sort=id)@0s"}},
		{"visible at 250ms", 100 * time.Millisecond, 250 * time.Millisecond, []string{
			"jobs(page=0,size=-1,sort=id)@0s", "jobs(page=0,size=-1,sort=id)@100ms",
			"jobs(page=0,size=-1,sort=id)@200ms", "jobs(page=0,size=-1,sort=id)@300ms"}},
		{"1s interval", time.Second, 1500 * time.Millisecond, []string{
			"jobs(page=0,size=-1,sort=id)@0s", "jobs(page=0,size=-1,sort=id)@1s", "jobs(page=0,size=-1,sort=id)@2s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newAutoClock()
			f := newFakeAPI(t, clk)
			f.visibleAt = tc.visibleAt
			s, err := strategies.NewPolling(tc.interval)
			if err != nil {
				t.Fatal(err)
			}
			out, err := s.Wait(context.Background(), f, clk, trial(f))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, f.log()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if out.Signal != "jobs-list" || !out.SeenAt.Equal(clk.Now()) {
				t.Errorf("Outcome %+v", out)
			}
		})
	}
}

func TestSDKAndCLI(t *testing.T) {
	jobPages := func(at string) []string {
		return []string{"task@" + at, "task@" + at, "jobs(page=1,size=0,sort=)@" + at, "next(page=2)@" + at,
			"next(page=3)@" + at}
	}
	tests := []struct {
		name       string
		mk         func() (strategies.Strategy, error)
		edit       func(*fakeAPI)
		wantCalls  []string
		wantSeenAt time.Duration
		wantErr    func(error) bool
		wantClass  string
	}{
		{
			name:       "sdk finished at 7s seen at 10s, 23 jobs in 3 pages",
			mk:         func() (strategies.Strategy, error) { return strategies.NewSDK(5 * time.Second) },
			wantCalls:  append([]string{"rq@0s", "rq@5s", "rq@10s"}, jobPages("10s")...),
			wantSeenAt: 10 * time.Second,
		},
		{
			name:       "cli period 2s",
			mk:         func() (strategies.Strategy, error) { return strategies.NewCLI(2 * time.Second) },
			wantCalls:  append([]string{"rq@0s", "rq@2s", "rq@4s", "rq@6s", "rq@8s"}, jobPages("8s")...),
			wantSeenAt: 8 * time.Second,
		},
		{
			name:      "sdk failed request carries the message",
			mk:        func() (strategies.Strategy, error) { return strategies.NewSDK(5 * time.Second) },
			edit:      func(f *fakeAPI) { f.failMsg = "ValueError: Too many jobs would be created\n" },
			wantCalls: []string{"rq@0s", "rq@5s", "rq@10s"},
			wantErr: func(err error) bool {
				var rf *strategies.RequestFailedError
				return errors.As(err, &rf) && rf.Message == "ValueError: Too many jobs would be created\n" &&
					strings.Contains(err.Error(), "Too many jobs")
			},
			wantClass: "request_failed",
		},
		{
			name:      "sdk raises on 404",
			mk:        func() (strategies.Strategy, error) { return strategies.NewSDK(5 * time.Second) },
			edit:      func(f *fakeAPI) { f.expireAt = time.Second },
			wantCalls: []string{"rq@0s", "rq@5s"},
			wantErr:   func(err error) bool { return errors.Is(err, cvat.ErrNotFound) },
			wantClass: "request_expired",
		},
		{
			name: "sdk stops on a task read error",
			mk:   func() (strategies.Strategy, error) { return strategies.NewSDK(5 * time.Second) },
			edit: func(f *fakeAPI) {
				f.getTaskErr = &cvat.APIError{Method: "GET", Endpoint: "/api/tasks/{id}", Status: 502}
			},
			wantCalls: []string{"rq@0s", "rq@5s", "rq@10s", "task@10s"},
			wantErr:   func(err error) bool { return cvat.StatusOf(err) == 502 },
			wantClass: "http_5xx",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newAutoClock()
			f := newFakeAPI(t, clk)
			f.jobs, f.startedAt, f.visibleAt, f.finishedAt = 23, 3*time.Second, 6900*time.Millisecond, 7*time.Second
			if tc.edit != nil {
				tc.edit(f)
			}
			s, err := tc.mk()
			if err != nil {
				t.Fatal(err)
			}
			out, err := s.Wait(context.Background(), f, clk, trial(f))
			if diff := cmp.Diff(tc.wantCalls, f.log()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr(err) {
					t.Fatalf("err = %v", err)
				}
				if c := strategies.Classify(err); c != tc.wantClass {
					t.Errorf("Classify = %q, want %q", c, tc.wantClass)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ids(101, 123), out.JobIDs); diff != "" {
				t.Errorf("JobIDs (-want +got):\n%s", diff)
			}
			if !out.SeenAt.Equal(t0.Add(tc.wantSeenAt)) || out.Signal != "request-finished" {
				t.Errorf("SeenAt %v signal %q, want %v", out.SeenAt.Sub(t0), out.Signal, tc.wantSeenAt)
			}
			if out.Request == nil || out.Request.FinishedDate == nil || !out.Request.FinishedDate.Equal(t0.Add(7*time.Second)) {
				t.Errorf("Request = %+v, want the finished request with its dates", out.Request)
			}
		})
	}
}
