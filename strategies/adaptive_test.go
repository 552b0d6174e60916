package strategies_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

// adaptiveTrial runs one adaptive Wait on a fresh scenario that starts after d/10 and commits and finishes
// after d, and returns its call log.
func adaptiveTrial(t testing.TB, a *strategies.Adaptive, images int, d time.Duration) []string {
	t.Helper()
	return adaptiveRun(t, a, images, d/10, d)
}

// adaptiveRun runs one adaptive Wait on a fresh scenario (request started after started, jobs visible,
// dated, and request finished after visible) and returns its call log.
func adaptiveRun(t testing.TB, a *strategies.Adaptive, images int, started, visible time.Duration) []string {
	t.Helper()
	return adaptiveRunDated(t, a, images, started, visible, true)
}

// adaptiveRunDated is adaptiveRun with jobs that carry their created_date (at visible) or none.
func adaptiveRunDated(t testing.TB, a *strategies.Adaptive, images int, started, visible time.Duration,
	dated bool) []string {
	t.Helper()
	clk := newAutoClock()
	f := newFakeAPI(t, clk)
	f.startedAt, f.visibleAt, f.finishedAt = started, visible, visible
	tr := trial(f)
	tr.Images = images
	var api strategies.API = f
	if dated {
		api = datedJobs{fakeAPI: f, created: t0.Add(visible)}
	}
	out, err := a.Wait(context.Background(), api, clk, tr)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.JobIDs, []int{101, 102}) || out.SeenAt.Before(t0.Add(visible)) ||
		(out.Signal != strategies.SignalJobsList && out.Signal != strategies.SignalRequestFinished) {
		t.Fatalf("Outcome %+v", out)
	}
	return f.log()
}

// learnt returns an adaptive strategy that has seen n trials of the given size, each queued 50 ms and
// processed in proc.
func learnt(t testing.TB, n, images int, proc time.Duration) *strategies.Adaptive {
	t.Helper()
	a := strategies.NewAdaptive()
	for range n {
		adaptiveRun(t, a, images, 50*ms, 50*ms+proc)
	}
	return a
}

const jobsCall = "jobs(page=0,size=-1,sort=id)"

// expectedLog is the call log of a trial that polls the request at status times and then lists the jobs at
// jobs times.
func expectedLog(status, jobs []time.Duration) []string {
	var log []string
	for _, d := range status {
		log = append(log, fmt.Sprintf("rq@%v", d))
	}
	for _, d := range jobs {
		log = append(log, fmt.Sprintf("%s@%v", jobsCall, d))
	}
	return log
}

// upTo returns the times of plan up to and including the first at or after end.
func upTo(t *testing.T, plan []time.Duration, end time.Duration) []time.Duration {
	t.Helper()
	for i, d := range plan {
		if d >= end {
			return plan[:i+1]
		}
	}
	t.Fatalf("plan %v ends before %v", plan, end)
	return nil
}

// TestAdaptiveScheduleUniform checks the dynamic programme against the analytic optimum for V uniform on
// (0, 1]: setting the derivative of c·E[polls] + E[delay] to zero gives gaps that shrink by c from one poll
// to the next and a last poll at 1; for c = 0.1 the best count is 4: 0.4, 0.7, 0.9, 1.
func TestAdaptiveScheduleUniform(t *testing.T) {
	uniform := func(x float64) float64 { return min(max(x, 0), 1) }
	tests := []struct {
		name string
		c    float64
		want []float64
	}{
		{"c=0.1", 0.1, []float64{0.4, 0.7, 0.9, 1}},
		{"c=0.02", 0.02, []float64{0.19, 0.36, 0.51, 0.64, 0.75, 0.84, 0.91, 0.96, 0.99, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := strategies.AdaptiveSchedule(uniform, 0, 1, tc.c)
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(x, y float64) bool {
				return math.Abs(x-y) < 1e-9
			})); diff != "" {
				t.Errorf("schedule (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAdaptiveScheduleIsLocallyOptimal evaluates c·E[polls] + E[delay] independently (1 ms integration) for
// a log-normal creation time and checks that moving one poll by a few ms, or dropping one, never helps.
func TestAdaptiveScheduleIsLocallyOptimal(t *testing.T) {
	const c = 0.02
	cdf := func(x float64) float64 { // 50 ms pick-up + LogN(0.6 s, 0.3)
		if x <= 0.05 {
			return 0
		}
		return 0.5 * math.Erfc(-(math.Log(x-0.05)-math.Log(0.6))/0.3/math.Sqrt2)
	}
	cost := func(plan []float64) float64 {
		total, prev := 0.0, 0.0
		for _, p := range plan {
			total += c * (1 - cdf(prev))
			for v := prev + 0.0005; v < p; v += 0.001 {
				total += (p - v) * (cdf(v+0.0005) - cdf(v-0.0005))
			}
			prev = p
		}
		return total + 10*(1-cdf(prev)) // undetected mass is expensive
	}
	plan := strategies.AdaptiveSchedule(cdf, 0, 2, c)
	if len(plan) < 5 {
		t.Fatalf("plan %v", plan)
	}
	best := cost(plan)
	for i := range plan {
		for _, shift := range []float64{-0.01, -0.005, 0.005, 0.01} {
			moved := slices.Clone(plan)
			moved[i] += shift
			if !slices.IsSorted(moved) || (i > 0 && moved[i]-moved[i-1] < 0.025) ||
				(i+1 < len(moved) && moved[i+1]-moved[i] < 0.025 && i+1 != len(moved)-1) || moved[i] > 2 {
				continue
			}
			if got := cost(moved); got < best-1e-4 {
				t.Errorf("moving poll %d (%.3f s) by %+.3f s lowers the cost %.5f to %.5f", i, plan[i], shift, best, got)
			}
		}
		if i == len(plan)-1 {
			continue
		}
		if got := cost(slices.Delete(slices.Clone(plan), i, i+1)); got < best-1e-4 {
			t.Errorf("dropping poll %d (%.3f s) lowers the cost %.5f to %.5f", i, plan[i], best, got)
		}
	}
}

// TestAdaptiveColdStart: with no history there is no plan and no prior of the server's speed: the polls
// follow the scale-free tail, max(25 ms, 20 % of the time since the upload), so the first trial finds jobs
// within 20 % of the time they took, whatever the server's speed.
func TestAdaptiveColdStart(t *testing.T) {
	if plan := strategies.AdaptivePlan(strategies.NewAdaptive(), 10); len(plan) != 0 {
		t.Fatalf("cold plan %v: want none", plan)
	}
	for _, visible := range []time.Duration{150 * ms, 700 * ms, 6 * time.Second} {
		a := strategies.NewAdaptive()
		got := adaptiveRun(t, a, 10, visible/10, visible)
		var times []time.Duration
		for _, call := range got {
			_, at, _ := cutLast(call, "@")
			d, err := time.ParseDuration(at)
			if err != nil {
				t.Fatal(err)
			}
			times = append(times, d)
		}
		prev := time.Duration(0)
		for i, at := range times {
			if i > 0 && at == prev && strings.HasPrefix(got[i-1], "rq@") {
				continue // the status read said finished: the listing follows at once
			}
			if want := max(25*ms, prev/5); at-prev < want-time.Microsecond || at-prev > want+time.Microsecond {
				t.Errorf("V = %v: call %d at %v, %v after the one before; want max(25 ms, 20 %% of %v)", visible, i, at, at-prev, prev)
			}
			prev = at
		}
		if last := times[len(times)-1]; last-visible > max(25*ms, visible/5) {
			t.Errorf("V = %v: jobs found at %v, later than 20 %%: %v", visible, last, got)
		}
		if !strings.HasPrefix(got[0], "rq@") {
			t.Errorf("V = %v: the first call %q is not a status read", visible, got[0])
		}
	}
}

// TestAdaptiveLearnedSchedule: after six trials processed in 0.5–0.75 s (queued 50 ms), the polls gather
// where those commits fell, 0.55–0.8 s after the upload; the queue is short next to the processing, so the
// next trial reads no status and lists the jobs on that plan.
func TestAdaptiveLearnedSchedule(t *testing.T) {
	a := strategies.NewAdaptive()
	for _, p := range []time.Duration{500 * ms, 550 * ms, 600 * ms, 650 * ms, 700 * ms, 750 * ms} {
		adaptiveRun(t, a, 4, 50*ms, 50*ms+p)
	}
	plan := strategies.AdaptivePlan(a, 4)
	var near []time.Duration
	for _, d := range plan {
		if d >= 550*ms && d <= 800*ms {
			near = append(near, d)
		}
	}
	if len(near) < 3 || plan[0] < 450*ms {
		t.Errorf("plan %v: polls within 0.55–0.8 s %v, want at least 3, none before 0.45 s", plan, near)
	}
	for i := 1; i < len(plan)-1; i++ {
		if gap := plan[i] - plan[i-1]; gap < 25*ms {
			t.Errorf("gap %v before poll %d of %v", gap, i, plan)
		}
	}
	visible := 700 * ms
	got := adaptiveRun(t, a, 4, 50*ms, visible)
	if diff := cmp.Diff(expectedLog(nil, upTo(t, plan, visible)), got); diff != "" {
		t.Errorf("learnt trial calls (-want +got):\n%s", diff)
	}
	if len(got) > 4 {
		t.Errorf("learnt trial of 0.7 s made %d calls: %v", len(got), got)
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(ms)
	}
	return out
}

// TestAdaptiveSizeTerm: processing that grows by 0.1 s per image is extrapolated to a larger task.
func TestAdaptiveSizeTerm(t *testing.T) {
	a := strategies.NewAdaptive()
	for range 3 {
		for _, n := range []int{10, 20, 30} {
			adaptiveRun(t, a, n, 50*ms, 50*ms+time.Duration(n+10)*100*ms) // P = 1 s + 0.1 s × n
		}
	}
	plan := strategies.AdaptivePlan(a, 40)
	var near []time.Duration // V = 50 ms + 5 s
	for _, d := range plan {
		if d >= 4900*ms && d <= 5200*ms {
			near = append(near, d)
		}
	}
	if len(near) < 2 {
		t.Errorf("plan for 40 images %v: polls near 5.05 s %v, want at least 2", plan, near)
	}
}

// TestAdaptiveIgnoresJobDates: CVAT stamps job rows when they are inserted, 0.1–0.5 s before the commit
// makes them visible (CALIBRATION §5.3), so the learnt commit is the midpoint between the last evidence of no
// jobs and the first listing with jobs, whatever the jobs' created_date says.
func TestAdaptiveIgnoresJobDates(t *testing.T) {
	learn := func(created time.Duration, dated bool) []time.Duration {
		a := strategies.NewAdaptive()
		for range 4 {
			adaptiveRunDated(t, a, 4, 50*ms, 640*ms, dated)
		}
		return strategies.AdaptivePlan(a, 4)
	}
	undated := learn(0, false)
	for _, created := range []time.Duration{200 * ms, 640 * ms} {
		if diff := cmp.Diff(undated, learn(created, true)); diff != "" {
			t.Errorf("jobs dated %v changed the plan (-undated +dated):\n%s", created, diff)
		}
	}
	// The plan centres on the commit at 0.64 s, not on a job date 0.44 s earlier.
	i, _ := slices.BinarySearch(undated, 640*ms)
	if i == 0 || i == len(undated) || undated[0] > 640*ms || undated[len(undated)-1] < 640*ms {
		t.Errorf("plan %v does not bracket the commit at 0.64 s", undated)
	}
}

// datedJobs gives every listed job the created_date created.
type datedJobs struct {
	*fakeAPI
	created time.Time
}

func (d datedJobs) ListJobs(ctx context.Context, q cvat.JobsQuery) (cvat.JobPage, error) {
	p, err := d.fakeAPI.ListJobs(ctx, q)
	for i := range p.Results {
		p.Results[i].CreatedDate = d.created
	}
	return p, err
}

// TestAdaptiveReplansOnStarted: a creation that the short-queue plan does not find (queued behind others
// this time) makes the strategy read the request; while it is queued the status is polled on the queue's
// conditional plan, and once it started the listings are re-planned from started_date.
func TestAdaptiveReplansOnStarted(t *testing.T) {
	a := learnt(t, 6, 4, 600*ms)
	started, visible := 1500*ms, 2100*ms
	got := adaptiveRun(t, a, 4, started, visible)
	firstStatus := slices.IndexFunc(got, func(c string) bool { return strings.HasPrefix(c, "rq@") })
	if firstStatus < 1 {
		t.Fatalf("calls %v: want listings on the short-queue plan first, then status reads", got)
	}
	var sawStarted bool
	var afterStart []string
	for _, c := range got[firstStatus:] {
		_, at, _ := cutLast(c, "@")
		d, _ := time.ParseDuration(at)
		if strings.HasPrefix(c, "rq@") && d >= started {
			sawStarted = true
			continue
		}
		if sawStarted {
			afterStart = append(afterStart, c)
		}
	}
	if !sawStarted || len(afterStart) == 0 || len(afterStart) > 4 {
		t.Errorf("calls %v: want a status read after the start at %v and at most 4 listings after it", got, started)
	}
	// The listings after the start are re-planned from it: none before started + 0.5 s.
	for _, c := range afterStart {
		_, at, _ := cutLast(c, "@")
		if d, _ := time.ParseDuration(at); d < started+500*ms {
			t.Errorf("listing %s before started + 0.5 s", c)
		}
	}
	// The wait just seen is now an atom of the queue: queued at 0.6 s, the start is expected at 1.5 s.
	if next := strategies.AdaptivePlanQueued(a, 4, 600*ms)[0]; next < started+500*ms {
		t.Errorf("queued at 0.6 s after a 1.5 s wait was learnt: next poll at %v", next)
	}
}

// TestAdaptiveNeverSpins: far slower than predicted, the plan runs out and the tail takes over; every call
// is preceded by a positive wait on the clock, and the tail is capped at 2 s.
func TestAdaptiveNeverSpins(t *testing.T) {
	tests := []struct {
		name     string
		statuses []string // nil: the scripted timeline
		expire   time.Duration
		visible  time.Duration
	}{
		{name: "slow creation", visible: 30 * time.Second},
		{name: "queued for long", statuses: append(slices.Repeat([]string{cvat.StatusQueued}, 30),
			cvat.StatusFinished)},
		{name: "expired", expire: 10 * time.Second, visible: 30 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := learnt(t, 3, 4, 600*ms)
			clk := newAutoClock()
			f := newFakeAPI(t, clk)
			f.startedAt, f.visibleAt, f.finishedAt = 50*ms, tc.visible, 30*time.Second
			f.statuses, f.expireAt = tc.statuses, tc.expire
			f.maxCalls = 200
			base := len(clk.sleepLog())
			out, err := a.Wait(context.Background(), f, clk, trial(f))
			if err != nil {
				t.Fatal(err)
			}
			if len(out.JobIDs) != 2 {
				t.Fatalf("Outcome %+v", out)
			}
			calls, sleeps := f.log(), clk.sleepLog()[base:]
			if len(sleeps) < len(calls)-1 {
				t.Errorf("%d calls after %d waits: %v", len(calls), len(sleeps), calls)
			}
			for i, d := range sleeps {
				if d < 5*ms || d > 2*time.Second {
					t.Errorf("wait %d = %v, want within [5ms, 2s]", i, d)
				}
			}
		})
	}
}

// TestAdaptiveEnds covers the other ends of a wait: failure, cancellation while waiting.
func TestAdaptiveEnds(t *testing.T) {
	t.Run("failed", func(t *testing.T) {
		clk := newAutoClock()
		f := newFakeAPI(t, clk)
		f.startedAt, f.visibleAt, f.finishedAt, f.failMsg = 50*ms, time.Hour, 300*ms, "ValueError: boom\n"
		_, err := strategies.NewAdaptive().Wait(context.Background(), f, clk, trial(f))
		var rf *strategies.RequestFailedError
		if !errors.As(err, &rf) || rf.Message != f.failMsg {
			t.Errorf("error %v, want the request failure", err)
		}
	})
	t.Run("no request id", func(t *testing.T) {
		clk := newAutoClock()
		f := newFakeAPI(t, clk)
		tr := trial(f)
		tr.RqID = ""
		if _, err := strategies.NewAdaptive().Wait(context.Background(), f, clk, tr); err == nil {
			t.Error("Wait without a request id succeeded")
		}
	})
	for _, phase := range []string{"status", "jobs"} {
		t.Run("cancel in "+phase+" phase", func(t *testing.T) {
			clk := newManualClock()
			f := newFakeAPI(t, clk)
			f.startedAt, f.visibleAt, f.finishedAt = 0, time.Hour, time.Hour
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := strategies.NewAdaptive().Wait(ctx, f, clk, trial(f))
				done <- err
			}()
			d := <-clk.armed // waiting for the first (status) poll
			if phase == "jobs" {
				clk.advance(d) // the status poll answers "started"; the next wait is before a listing
				<-clk.armed
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("error %v, want context.Canceled", err)
			}
			wantCalls := map[string]int{"status": 0, "jobs": 1}[phase]
			if got := f.log(); len(got) != wantCalls {
				t.Errorf("calls %v, want %d", got, wantCalls)
			}
		})
	}
}

// TestAdaptiveConcurrentWaits runs trials of one Adaptive concurrently (run with -race): all succeed and the
// samples they record reach the next plan.
func TestAdaptiveConcurrentWaits(t *testing.T) {
	a := strategies.NewAdaptive()
	cold := strategies.AdaptivePlan(a, 4)
	done := make(chan error)
	for i := range 8 {
		go func() {
			clk := newAutoClock()
			f := newFakeAPI(t, clk)
			f.startedAt, f.visibleAt, f.finishedAt = 50*ms, time.Duration(i+2)*200*ms, time.Duration(i+2)*200*ms
			out, err := a.Wait(context.Background(), f, clk, trial(f))
			if err == nil && len(out.JobIDs) != 2 {
				err = fmt.Errorf("outcome %+v", out)
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if slices.Equal(cold, strategies.AdaptivePlan(a, 4)) {
		t.Error("no samples learnt from concurrent waits")
	}
}
