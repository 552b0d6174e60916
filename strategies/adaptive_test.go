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

// TestAdaptiveColdStart: with no history the plan comes from CALIBRATION's prior, about 0.7 s for a small
// task, instead of a blind backoff from zero.
func TestAdaptiveColdStart(t *testing.T) {
	a := strategies.NewAdaptive()
	plan := strategies.AdaptivePlan(a, 10)
	// Prior V = 50 ms + LogN(0.68 s, 0.3): 5 % quantile 0.465 s, median 0.73 s.
	if len(plan) < 3 || plan[0] < 465*ms || plan[0] > 730*ms {
		t.Fatalf("cold plan %v: first poll outside the prior's 5–50 %% quantiles", plan)
	}
	for i := 1; i < len(plan); i++ {
		if gap := plan[i] - plan[i-1]; gap < 25*ms && i != len(plan)-1 {
			t.Errorf("gap %v before poll %d of %v", gap, i, plan)
		}
	}
	// At the median the optimum's gap is about √(2c / hazard): hazard = density / survival =
	// 1/(0.68 s × 0.3 × √(2π)) / 0.5 ≈ 3.91/s, so √(0.04 / 3.91) ≈ 0.10 s.
	i, _ := slices.BinarySearch(plan, 730*ms)
	if gap := plan[i] - plan[i-1]; gap < 80*ms || gap > 120*ms {
		t.Errorf("gap at the median %v, want about 0.1 s: %v", gap, plan)
	}

	// The first trial: one status poll at plan[0] sees "started", then the jobs at the re-planned times.
	started, visible := 50*ms, 700*ms
	jobs := upTo(t, strategies.AdaptivePlanStarted(a, 10, started, plan[0]), visible)
	got := adaptiveRun(t, a, 10, started, visible)
	if diff := cmp.Diff(expectedLog(plan[:1], jobs), got); diff != "" {
		t.Errorf("cold trial calls (-want +got):\n%s", diff)
	}
	if len(got) > 4 {
		t.Errorf("cold trial of 0.7 s made %d calls: %v", len(got), got)
	}
}

// TestAdaptiveLearnedSchedule: after six trials processed in 0.5–0.75 s (queued 50 ms), the polls gather
// where those commits fell, 0.55–0.8 s after the upload.
func TestAdaptiveLearnedSchedule(t *testing.T) {
	a := strategies.NewAdaptive()
	for _, p := range []time.Duration{500 * ms, 550 * ms, 600 * ms, 650 * ms, 700 * ms, 750 * ms} {
		adaptiveRun(t, a, 4, 50*ms, 50*ms+p)
	}
	plan := strategies.AdaptivePlan(a, 4)
	// Golden values of the dynamic programme (its optimality is checked above) for six atoms at 0.55–0.8 s
	// (Silverman width about 0.1 in log space, weight 6) and the prior (weight 2) around 0.71 s.
	want := []time.Duration{615 * ms, 700 * ms, 770 * ms, 830 * ms, 885 * ms, 945 * ms, 1010 * ms, 1085 * ms,
		1160 * ms, 1235 * ms, 1305 * ms, 1375 * ms, 1445 * ms, 1515 * ms, 1585 * ms, 1655 * ms, 1730 * ms}
	if diff := cmp.Diff(want, roundAll(plan)); diff != "" {
		t.Errorf("learnt plan (-want +got):\n%s", diff)
	}
	var near []time.Duration
	for _, d := range plan {
		if d >= 550*ms && d <= 800*ms {
			near = append(near, d)
		}
	}
	if len(near) < 3 || plan[0] < 450*ms {
		t.Errorf("plan %v: polls within 0.55–0.8 s %v, want at least 3, none before 0.45 s", plan, near)
	}
	// A trial as learnt: one status call, then the listings up to the commit at 0.7 s.
	visible := 700 * ms
	jobs := upTo(t, strategies.AdaptivePlanStarted(a, 4, 50*ms, plan[0]), visible)
	got := adaptiveRun(t, a, 4, 50*ms, visible)
	if diff := cmp.Diff(expectedLog(plan[:1], jobs), got); diff != "" {
		t.Errorf("learnt trial calls (-want +got):\n%s", diff)
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
	for _, n := range []int{10, 20, 30} {
		adaptiveRun(t, a, n, 50*ms, 50*ms+time.Duration(n+10)*100*ms) // P = 1 s + 0.1 s × n
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

// TestAdaptiveLearnsFromJobDates: the processing sample ends at the newest job created_date; without job
// dates, at the midpoint between the last empty and the first non-empty listing.
func TestAdaptiveLearnsFromJobDates(t *testing.T) {
	// The request finishes at 0.9 s in both, but the jobs say the commit was at 0.64 s or 0.8 s.
	learn := func(created time.Duration) []time.Duration {
		a := strategies.NewAdaptive()
		for range 4 {
			clk := newAutoClock()
			f := newFakeAPI(t, clk)
			f.startedAt, f.visibleAt, f.finishedAt = 50*ms, 640*ms, 900*ms
			if _, err := a.Wait(context.Background(), datedJobs{fakeAPI: f, created: t0.Add(created)}, clk,
				trial(f)); err != nil {
				t.Fatal(err)
			}
		}
		return strategies.AdaptivePlan(a, 4)
	}
	if diff := cmp.Diff(strategies.AdaptivePlan(learnt(t, 4, 4, 590*ms), 4), learn(640*ms)); diff != "" {
		t.Errorf("plan learnt from job dates (-want +got):\n%s", diff)
	}
	if at640, at800 := learn(640*ms), learn(800*ms); slices.Equal(at640, at800) {
		t.Errorf("job dates 0.64 s and 0.8 s gave the same plan %v", at640)
	}

	// Undated: the sample is the midpoint of the last two listings of the trial.
	undated := strategies.NewAdaptive()
	log := adaptiveRunDated(t, undated, 4, 50*ms, 640*ms, false)
	if len(log) < 2 || !strings.HasPrefix(log[len(log)-1], jobsCall) {
		t.Fatalf("calls %v: want a status call and listings", log)
	}
	at := func(call string) time.Duration {
		_, s, _ := cutLast(call, "@")
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	mid := (at(log[len(log)-2]) + at(log[len(log)-1])) / 2
	want := strategies.NewAdaptive()
	clk := newAutoClock()
	f := newFakeAPI(t, clk)
	f.startedAt, f.visibleAt, f.finishedAt = 50*ms, 640*ms, 640*ms
	api := datedJobs{fakeAPI: f, created: t0.Add(mid)}
	if _, err := want.Wait(context.Background(), api, clk, trial(f)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strategies.AdaptivePlan(want, 4), strategies.AdaptivePlan(undated, 4)); diff != "" {
		t.Errorf("plan learnt without job dates (-commit at the midpoint %v +got):\n%s", mid, diff)
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

// TestAdaptiveReplansOnStarted: a request queued behind other creations is polled on the queue's
// conditional plan until it reads "started"; then the listings are re-planned from started_date.
func TestAdaptiveReplansOnStarted(t *testing.T) {
	a := learnt(t, 6, 4, 600*ms)
	started, visible := 1500*ms, 2100*ms
	// Mirror the algorithm with the exported plans: status polls while queued, then the jobs plan.
	status := []time.Duration{strategies.AdaptivePlan(a, 4)[0]}
	for status[len(status)-1] < started {
		now := status[len(status)-1]
		status = append(status, strategies.AdaptivePlanQueued(a, 4, now)[0])
	}
	jobs := upTo(t, strategies.AdaptivePlanStarted(a, 4, started, status[len(status)-1]), visible)
	// Queued longer than any wait seen: the next status poll assumes the start is now.
	for _, q := range []time.Duration{600 * ms, 3 * time.Second} {
		next := strategies.AdaptivePlanQueued(a, 4, q)[0]
		if next < q+500*ms || next > q+700*ms {
			t.Errorf("queued at %v: next poll at %v, want about %v + 0.6 s", q, next, q)
		}
	}
	got := adaptiveRun(t, a, 4, started, visible)
	if diff := cmp.Diff(expectedLog(status, jobs), got); diff != "" {
		t.Errorf("queued trial calls (-want +got):\n%s", diff)
	}
	// Re-planned from the start: the listings begin near started + 0.6 s, not where the unconditional plan
	// left off.
	if len(jobs) > 3 || jobs[0] < started+500*ms {
		t.Errorf("listings %v after the start at %v", jobs, started)
	}
	// The wait just seen is now an atom of the queue: queued at 0.6 s, the start is expected at 1.5 s.
	if next := strategies.AdaptivePlanQueued(a, 4, 600*ms)[0]; next < started+500*ms {
		t.Errorf("queued at 0.6 s after a 1.5 s wait was learnt: next poll at %v", next)
	}
}

// TestAdaptiveNeverSpins: far slower than predicted, the plan runs out and the tail takes over; every call
// is preceded by a positive wait on the clock, and the tail is capped at 1 s.
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
				if d < 5*ms || d > time.Second {
					t.Errorf("wait %d = %v, want within [5ms, 1s]", i, d)
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
