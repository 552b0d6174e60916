package strategies_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

const ms = time.Millisecond

func TestUIStep(t *testing.T) {
	zero := func() float64 { return 0 }
	top := func() float64 { return 0.999999 }
	tests := []struct {
		name               string
		status             string
		index              int
		progress, previous float64
		random             func() float64
		wantIndex          int
		wantDelay          time.Duration
	}{
		{"first queued grows before choosing", "queued", 0, 0, 0, zero, 1, 13000 * ms},
		{"first queued max jitter", "queued", 0, 0, 0, top, 1, 19499 * ms},
		{"first started without progress", "started", 0, 0, 0, zero, 1, 7000 * ms},
		{"first started max jitter", "started", 0, 0, 0, top, 1, 10499 * ms},
		{"started index capped at 2", "started", 2, 0, 0, zero, 2, 13000 * ms},
		{"started resets a queued index to 2", "started", 7, 0.1, 0.1, zero, 2, 13000 * ms},
		{"queued capped at 11", "queued", 11, 0, 0, zero, 11, 163000 * ms},
		{"queued 10 to 11", "queued", 10, 0, 0, top, 11, (163000 + 81499) * ms},
		{"progress jump keeps the index", "started", 1, 0.30, 0.05, zero, 1, 7000 * ms},
		{"jump of 24.4 points rounds below 25", "started", 0, 0.244, 0, zero, 1, 7000 * ms},
		{"jump of 24.5 points rounds to 25", "started", 0, 0.245, 0, zero, 0, 3000 * ms},
		{"edge: jump above index 2 repolls at once", "started", 5, 0.5, 0, top, 5, 0},
		{"jitter is floored", "queued", 2, 0, 0, func() float64 { return 0.5 }, 3, (29000 + 7250) * ms},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idx, d := strategies.UIStep(tc.status, tc.index, tc.progress, tc.previous, tc.random)
			if idx != tc.wantIndex || d != tc.wantDelay {
				t.Errorf("UIStep = (%d, %v), want (%d, %v)", idx, d, tc.wantIndex, tc.wantDelay)
			}
		})
	}
}

func TestWebUI(t *testing.T) {
	q, s, fin, fail := cvat.StatusQueued, cvat.StatusStarted, cvat.StatusFinished, cvat.StatusFailed
	tests := []struct {
		name       string
		random     float64
		statuses   []string
		progress   func(call int) float64
		expireAt   time.Duration
		wantCalls  []string
		wantSleeps []time.Duration
		wantErr    func(error) bool
	}{
		{
			name: "queued queued started started finished, no jitter", statuses: []string{q, q, s, s, fin},
			wantCalls: []string{"rq@0s", "rq@13s", "rq@32s", "rq@45s", "rq@58s", "task@58s",
				"jobs(page=1,size=500,sort=)@58s"},
			wantSleeps: []time.Duration{13000 * ms, 19000 * ms, 13000 * ms, 13000 * ms},
		},
		{
			name: "same with maximal jitter", random: 0.999999, statuses: []string{q, q, s, s, fin},
			wantCalls: []string{"rq@0s", "rq@19.499s", "rq@47.998s", "rq@1m7.497s", "rq@1m26.996s",
				"task@1m26.996s", "jobs(page=1,size=500,sort=)@1m26.996s"},
			wantSleeps: []time.Duration{19499 * ms, 28499 * ms, 19499 * ms, 19499 * ms},
		},
		{
			name: "finished at once", statuses: []string{fin},
			wantCalls: []string{"rq@0s", "task@0s", "jobs(page=1,size=500,sort=)@0s"},
		},
		{
			name: "progress jump at index 4 repolls at once", statuses: []string{q, q, q, q, s, s, fin},
			progress: func(call int) float64 {
				if call >= 4 {
					return 0.5
				}
				return 0
			},
			wantCalls: []string{"rq@0s", "rq@13s", "rq@32s", "rq@1m1s", "rq@1m42s", "rq@1m42s", "rq@1m55s",
				"task@1m55s", "jobs(page=1,size=500,sort=)@1m55s"},
			wantSleeps: []time.Duration{13000 * ms, 19000 * ms, 29000 * ms, 41000 * ms, 13000 * ms},
		},
		{
			name: "failed", statuses: []string{q, fail}, wantCalls: []string{"rq@0s", "rq@13s"},
			wantSleeps: []time.Duration{13000 * ms},
			wantErr: func(err error) bool {
				var rf *strategies.RequestFailedError
				return errors.As(err, &rf)
			},
		},
		{
			name: "404 after queued is a cancellation", statuses: []string{q}, expireAt: time.Second,
			wantCalls: []string{"rq@0s", "rq@13s"}, wantSleeps: []time.Duration{13000 * ms},
			wantErr: func(err error) bool {
				return errors.Is(err, strategies.ErrCancelled) && errors.Is(err, cvat.ErrNotFound)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newAutoClock()
			f := newFakeAPI(t, clk)
			f.statuses, f.progress, f.expireAt = tc.statuses, tc.progress, tc.expireAt
			u := strategies.NewWebUI(1)
			strategies.SetUIRand(u, func(strategies.Trial) func() float64 {
				return func() float64 { return tc.random }
			})
			out, err := u.Wait(context.Background(), f, clk, trial(f))
			if diff := cmp.Diff(tc.wantCalls, f.log()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSleeps, clk.sleepLog()); diff != "" {
				t.Errorf("sleeps (-want +got):\n%s", diff)
			}
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr(err) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.Signal != "request-finished" || len(out.JobIDs) != 2 {
				t.Errorf("Outcome %+v", out)
			}
		})
	}
}

func TestWebUI404OnFirstPollIsNotACancellation(t *testing.T) {
	clk := newAutoClock()
	f := newFakeAPI(t, clk)
	f.latency, f.expireAt = time.Millisecond, time.Millisecond
	_, err := strategies.NewWebUI(1).Wait(context.Background(), f, clk, trial(f))
	if !errors.Is(err, cvat.ErrNotFound) || errors.Is(err, strategies.ErrCancelled) {
		t.Fatalf("err = %v, want a plain 404", err)
	}
}

// TestWebUISeededJitter runs the real seeded source: every delay lies in [base, base + floor(base/2)), the
// same seed and task give the same delays, another seed different ones.
func TestWebUISeededJitter(t *testing.T) {
	run := func(seed int64) []time.Duration {
		clk := newAutoClock()
		f := newFakeAPI(t, clk)
		f.startedAt, f.visibleAt, f.finishedAt = 200*time.Second, 250*time.Second, 250*time.Second
		if _, err := strategies.NewWebUI(seed).Wait(context.Background(), f, clk, trial(f)); err != nil {
			t.Fatal(err)
		}
		return clk.sleepLog()
	}
	a, b, c := run(7), run(7), run(8)
	// queued ×(indexes 1..) while < 200 s: 13, 19, 29, 41, 53, 67 s bases; then started → index 2.
	bases := []time.Duration{13000 * ms, 19000 * ms, 29000 * ms, 41000 * ms, 53000 * ms, 67000 * ms}
	if len(a) < len(bases) {
		t.Fatalf("sleeps %v", a)
	}
	var sum time.Duration
	for i, base := range bases {
		sum += a[i]
		if a[i] < base || a[i] >= base+base/2 {
			t.Errorf("sleep %d = %v outside [%v, %v)", i, a[i], base, base+base/2)
		}
		if sum >= 200*time.Second {
			break
		}
	}
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different delays: %v vs %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 gave the same delays %v", a)
	}
}

func TestBackoff(t *testing.T) {
	p := strategies.DefaultParams()
	p.BackoffInitial, p.BackoffMax, p.BackoffFactor, p.BackoffJitter = 100*ms, time.Second, 2, 0
	jobsAll := "jobs(page=0,size=-1,sort=id)"
	tests := []struct {
		name       string
		edit       func(*fakeAPI)
		wantCalls  []string
		wantSignal string
		wantErr    func(error) bool
	}{
		{
			name:       "finished at 1s seen at 1.5s",
			edit:       func(f *fakeAPI) { f.visibleAt, f.finishedAt = time.Second, time.Second },
			wantCalls:  []string{"rq@0s", "rq@100ms", "rq@300ms", "rq@700ms", "rq@1.5s", jobsAll + "@1.5s"},
			wantSignal: "request-finished",
		},
		{
			name: "a 503 of the requests API is one more step",
			edit: func(f *fakeAPI) {
				f.visibleAt, f.finishedAt = time.Second, time.Second
				f.rqFault = func(call int) error {
					if call == 1 {
						return &cvat.APIError{Method: "GET", Endpoint: "/api/requests/{rq_id}", Status: 503}
					}
					return nil
				}
			},
			wantCalls:  []string{"rq@0s", "rq@100ms", "rq@300ms", "rq@700ms", "rq@1.5s", jobsAll + "@1.5s"},
			wantSignal: "request-finished",
		},
		{
			name: "capped at max",
			edit: func(f *fakeAPI) { f.visibleAt, f.finishedAt = 3*time.Second, 3*time.Second },
			wantCalls: []string{"rq@0s", "rq@100ms", "rq@300ms", "rq@700ms", "rq@1.5s", "rq@2.5s", "rq@3.5s",
				jobsAll + "@3.5s"},
			wantSignal: "request-finished",
		},
		{
			name: "404 with jobs present: expired request",
			edit: func(f *fakeAPI) {
				f.latency, f.expireAt, f.visibleAt, f.finishedAt = ms, ms, 0, 0
			},
			wantCalls:  []string{"rq@1ms", jobsAll + "@2ms"},
			wantSignal: "request-expired",
		},
		{
			name: "404 before the jobs: backoff continues on the jobs list",
			edit: func(f *fakeAPI) { f.expireAt, f.visibleAt, f.finishedAt = 50*ms, time.Second, time.Second },
			wantCalls: []string{"rq@0s", "rq@100ms", jobsAll + "@100ms", jobsAll + "@300ms", jobsAll + "@700ms",
				jobsAll + "@1.5s"},
			wantSignal: "request-expired",
		},
		{
			name:      "failed",
			edit:      func(f *fakeAPI) { f.finishedAt, f.failMsg = 200*ms, "boom" },
			wantCalls: []string{"rq@0s", "rq@100ms", "rq@300ms"},
			wantErr: func(err error) bool {
				var rf *strategies.RequestFailedError
				return errors.As(err, &rf) && rf.Message == "boom"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newAutoClock()
			f := newFakeAPI(t, clk)
			tc.edit(f)
			b, err := strategies.NewBackoff(p)
			if err != nil {
				t.Fatal(err)
			}
			out, err := b.Wait(context.Background(), f, clk, trial(f))
			if diff := cmp.Diff(tc.wantCalls, f.log()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr(err) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.Signal != tc.wantSignal || !slices.Equal(out.JobIDs, []int{101, 102}) {
				t.Errorf("Outcome %+v, want signal %q", out, tc.wantSignal)
			}
		})
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	p := strategies.DefaultParams() // 100 ms ×2 up to 5 s, ±20 %
	clk := newAutoClock()
	f := newFakeAPI(t, clk)
	f.visibleAt, f.finishedAt = 30*time.Second, 30*time.Second
	b, err := strategies.NewBackoff(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(context.Background(), f, clk, trial(f)); err != nil {
		t.Fatal(err)
	}
	nominal := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms}
	sleeps := clk.sleepLog()
	if len(sleeps) < len(nominal) {
		t.Fatalf("sleeps %v", sleeps)
	}
	exact := 0
	for i, d := range nominal {
		lo, hi := time.Duration(float64(d)*0.8), time.Duration(float64(d)*1.2)
		if sleeps[i] < lo || sleeps[i] > hi {
			t.Errorf("sleep %d = %v outside [%v, %v]", i, sleeps[i], lo, hi)
		}
		if sleeps[i] == d {
			exact++
		}
	}
	if exact == len(nominal) {
		t.Errorf("no jitter applied: %v", sleeps)
	}
}

// cutLast splits s at its last sep.
func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// cvatbench's own strategies take a transient failure of a jobs listing (after the client's retries) as one
// missed listing; the replicas of official tools give up there, as the tools do.
func TestTransientListingIsOneMissedStep(t *testing.T) {
	unavailable := &cvat.APIError{Method: "GET", Endpoint: "/api/jobs", Status: 503}
	for _, tc := range []struct {
		name    string
		s       func(t *testing.T) strategies.Strategy
		patient bool
	}{
		{"poll", func(t *testing.T) strategies.Strategy { p, _ := strategies.NewPolling(100 * ms); return p }, true},
		{"busyloop", func(t *testing.T) strategies.Strategy { return strategies.NewBusyLoop() }, true},
		{"sdk", func(t *testing.T) strategies.Strategy { s, _ := strategies.NewSDK(100 * ms); return s }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newAutoClock()
			f := newFakeAPI(t, clk)
			f.visibleAt, f.finishedAt = 0, 0
			f.jobsFault = func(call int) error {
				if call < 2 {
					return unavailable
				}
				return nil
			}
			out, err := tc.s(t).Wait(context.Background(), f, clk, trial(f))
			if !tc.patient {
				if !errors.Is(err, unavailable) {
					t.Fatalf("replica: err = %v, want the 503", err)
				}
				return
			}
			if err != nil || len(out.JobIDs) != 2 || f.jobsCalls != 3 {
				t.Fatalf("out %+v, err %v, %d listings; want the jobs at the third listing", out, err, f.jobsCalls)
			}
		})
	}
}
