package bench_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/report"
	"github.com/cvatbench/cvatbench/strategies"
)

func fakeConfig(t *testing.T) bench.Config {
	cfg := bench.DefaultConfig()
	cfg.Strategies = []string{"poll", "sdk"}
	cfg.TasksPerStrategy = 3
	cfg.Concurrency = 2
	cfg.Images = 3
	cfg.ImageSize = "8x6"
	cfg.OutDir = t.TempDir()
	return cfg
}

func fakeOptions(api *fakeAPI, clk *fakeClock, cfg bench.Config) []bench.Option {
	opts := []bench.Option{bench.WithAPI(api), bench.WithClock(clk)}
	for _, name := range cfg.Strategies {
		opts = append(opts, bench.WithStrategy(&listStrategy{name: name}))
	}
	return opts
}

func TestRunnerRecordsEveryTrialAndCleansUp(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*bench.Config)
		open   bool
	}{
		{"closed loop", func(*bench.Config) {}, false},
		{"open loop", func(c *bench.Config) { c.Concurrency, c.Rate = 0, 2 }, true},
		{"quality sweep", func(c *bench.Config) { c.ImageQualities = []int{30, 90} }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fakeConfig(t)
			tc.modify(&cfg)
			clk := newFakeClock()
			api := newFakeAPI(clk)
			foreign, _ := api.CreateTask(context.Background(), cvatTaskSpec("someone-elses-task"))
			r, err := bench.New(cfg, fakeOptions(api, clk, cfg)...)
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Recorded != cfg.Trials() || res.Errors != 0 || len(res.CleanupErrors) != 0 {
				t.Fatalf("result %+v, want %d trials, no errors", res, cfg.Trials())
			}
			run, err := report.Load(res.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(run.Trials) != cfg.Trials() {
				t.Fatalf("trials.jsonl has %d lines, want %d", len(run.Trials), cfg.Trials())
			}
			seqs := map[int]bool{}
			for _, tr := range run.Trials {
				seqs[tr.Seq] = true
				checkOKTrial(t, tr, tc.open)
				if tr.RunID != res.RunID {
					t.Errorf("trial run id %q, want %q", tr.RunID, res.RunID)
				}
			}
			if len(seqs) != cfg.Trials() {
				t.Errorf("%d distinct seqs, want %d", len(seqs), cfg.Trials())
			}
			// Cleanup: every task and project of the run is gone, the foreign task survives.
			api.mu.Lock()
			left := len(api.tasks)
			_, foreignAlive := api.tasks[foreign.ID]
			projects := len(api.projects)
			api.mu.Unlock()
			if left != 1 || !foreignAlive || projects != 0 {
				t.Errorf("after cleanup: %d tasks (foreign alive %v), %d projects; want only the foreign task", left, foreignAlive, projects)
			}
			m := run.Meta
			if m.FinishedAt == nil || m.ServerVersion != "2.73.0" || m.TrialsRecorded != cfg.Trials() || m.Target != "embedded" {
				t.Errorf("meta %+v", m)
			}
			if m.ClockOffset.Estimates != cfg.Trials() || m.ClockOffset.MaxErrorMs <= 0 {
				t.Errorf("clock offset stats %+v", m.ClockOffset)
			}
			for _, s := range cfg.Strategies {
				h := run.Histograms[s]
				if h == nil || h.TotalCount() != int64(cfg.Trials()/len(cfg.Strategies)) {
					t.Errorf("hlog tag %s: %v", s, h)
				}
				if run.Histograms[s+record.DetectionTagSuffix] == nil {
					t.Errorf("hlog lacks %s.detection", s)
				}
			}
		})
	}
}

func cvatTaskSpec(name string) cvat.TaskSpec { return cvat.TaskSpec{Name: name} }

func checkOKTrial(t *testing.T, tr record.Trial, open bool) {
	t.Helper()
	if tr.Result != record.ResultOK || len(tr.JobIDs) == 0 || tr.TaskID == 0 {
		t.Fatalf("trial %d: %+v", tr.Seq, tr)
	}
	if !strings.HasPrefix(tr.Signal, "jobs-list") {
		t.Errorf("signal %q", tr.Signal)
	}
	order := []*time.Time{tr.IntendedAt, tr.CreateSentAt, tr.TaskCreatedAt, tr.UploadDoneAt, tr.JobsObtainedAt}
	if !open {
		order = order[1:]
		if tr.IntendedAt != nil || tr.ScheduleLagMs != nil {
			t.Errorf("closed loop trial %d has intended_at", tr.Seq)
		}
	}
	for i, ts := range order {
		if ts == nil {
			t.Fatalf("trial %d: timestamp %d missing", tr.Seq, i)
		}
		if i > 0 && ts.Before(*order[i-1]) {
			t.Errorf("trial %d: timestamp %d before %d", tr.Seq, i, i-1)
		}
	}
	from := tr.CreateSentAt
	if open {
		from = tr.IntendedAt
		if tr.ScheduleLagMs == nil || *tr.ScheduleLagMs < 0 {
			t.Errorf("open loop trial %d: schedule lag %v", tr.Seq, tr.ScheduleLagMs)
		}
	}
	if want := float64(tr.JobsObtainedAt.Sub(*from)) / 1e6; tr.EndToEndMs == nil || *tr.EndToEndMs != want {
		t.Errorf("trial %d: end_to_end_ms %v, want %v", tr.Seq, tr.EndToEndMs, want)
	}
	// The fake server runs 3 s ahead; the estimate must land within its bound and the visible time before
	// the jobs were obtained.
	if tr.ClockOffsetMs == nil || tr.ClockOffsetErrorMs == nil {
		t.Fatalf("trial %d: no clock offset", tr.Seq)
	}
	if d := *tr.ClockOffsetMs - 3000; d > *tr.ClockOffsetErrorMs || d < -*tr.ClockOffsetErrorMs {
		t.Errorf("trial %d: offset %v ms ±%v, want 3000", tr.Seq, *tr.ClockOffsetMs, *tr.ClockOffsetErrorMs)
	}
	if tr.JobsVisibleSource != record.VisibleFromServerFinished || tr.JobsVisibleAt == nil {
		t.Fatalf("trial %d: jobs visible %v from %q", tr.Seq, tr.JobsVisibleAt, tr.JobsVisibleSource)
	}
	if tr.ServerQueueMs == nil || *tr.ServerQueueMs != 10 || tr.ServerProcessingMs == nil || *tr.ServerProcessingMs != 30 {
		t.Errorf("trial %d: server queue %v processing %v", tr.Seq, tr.ServerQueueMs, tr.ServerProcessingMs)
	}
}

func TestRunnerGroundTruthWins(t *testing.T) {
	cfg := fakeConfig(t)
	clk := newFakeClock()
	api := newFakeAPI(clk)
	visible := time.Date(2026, 11, 27, 0, 15, 0, 0, time.UTC)
	run := runFakeSaved(t, cfg, api, clk, bench.WithGroundTruth(func(context.Context, int) (time.Time, bool, error) {
		return visible, true, nil
	}))
	for _, tr := range run.Trials {
		if tr.JobsVisibleSource != record.VisibleFromEmulator || !tr.JobsVisibleAt.Equal(visible) {
			t.Errorf("trial %d: visible %v from %q", tr.Seq, tr.JobsVisibleAt, tr.JobsVisibleSource)
		}
	}
	if !run.Meta.ClockOffset.GroundTruth {
		t.Error("meta does not say ground truth was used")
	}
}

func TestRunnerUploadErrorIsRecorded(t *testing.T) {
	cfg := fakeConfig(t)
	clk := newFakeClock()
	api := newFakeAPI(clk)
	api.failUpload = true
	run := runFakeSaved(t, cfg, api, clk)
	failed := 0
	for _, tr := range run.Trials {
		if tr.Result != record.ResultOK {
			failed++
		}
	}
	if failed != cfg.Trials() {
		t.Fatalf("errors %d, want %d", failed, cfg.Trials())
	}
	tr := run.Trials[0]
	if tr.Result != record.ResultError || !strings.Contains(tr.Error, "upload data") || tr.EndToEndMs != nil || tr.FailedIn != record.PhaseUpload {
		t.Errorf("trial %+v", tr)
	}
	// The table says these errors happened before the strategy ran, on a line of their own; the strategy's
	// err and error rate do not count them, nor does an errors threshold.
	var table strings.Builder
	sum, err := report.Render(&table, run, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	row := sum.Rows[0]
	if row.SetupErrors != row.Errors || row.WaitErrors() != 0 || row.ErrorRate() != 0 || len(row.ErrorsByClass) != 0 ||
		!strings.Contains(table.String(), "setup failures: 6 trials failed creating or uploading, before any strategy ran (in n, not in err): poll http_4xx=3; sdk http_4xx=3") {
		t.Errorf("setup errors %d of %d, wait errors %d, rate %v; table:\n%s", row.SetupErrors, row.Errors, row.WaitErrors(),
			row.ErrorRate(), table.String())
	}
	slo, err := report.ParseSLO("errors<1%")
	if err != nil {
		t.Fatal(err)
	}
	res, err := report.EvaluateSLOs(run, []report.SLO{slo})
	if err != nil || len(res) != len(cfg.Strategies) {
		t.Fatalf("slo results %v, %v", res, err)
	}
	for _, r := range res {
		if r.Available || r.Pass {
			t.Errorf("errors<1%% over a row none of whose trials got to the wait: %+v, want unavailable", r)
		}
	}
	if len(api.tasks) != 0 {
		t.Errorf("%d tasks left after cleanup", len(api.tasks))
	}
}

func TestRunnerCancelRecordsCanceledTrialsAndCleansUp(t *testing.T) {
	cfg := fakeConfig(t)
	clk := newFakeClock()
	api := newFakeAPI(clk)
	entered := make(chan string)
	opts := []bench.Option{bench.WithAPI(api), bench.WithClock(clk)}
	for _, name := range cfg.Strategies {
		opts = append(opts, bench.WithStrategy(&listStrategy{name: name, block: make(chan struct{}), entered: entered}))
	}
	r, err := bench.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type out struct {
		res bench.Result
		err error
	}
	done := make(chan out)
	go func() {
		res, err := r.Run(ctx)
		done <- out{res, err}
	}()
	for range cfg.Concurrency { // both workers are waiting
		<-entered
	}
	cancel()
	o := <-done
	if !errors.Is(o.err, context.Canceled) || !o.res.Interrupted {
		t.Fatalf("Run = %+v, %v; want interrupted", o.res, o.err)
	}
	if o.res.Recorded != cfg.Concurrency || o.res.Canceled != cfg.Concurrency || o.res.Errors != 0 {
		t.Errorf("recorded %d trials (%d canceled, %d errors), want the %d in flight, canceled, no error",
			o.res.Recorded, o.res.Canceled, o.res.Errors, cfg.Concurrency)
	}
	run, err := report.Load(o.res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range run.Trials {
		if tr.Result != record.ResultCanceled || tr.ErrorClass != "canceled" {
			t.Errorf("trial %d: result %s class %s", tr.Seq, tr.Result, tr.ErrorClass)
		}
	}
	if !run.Meta.Interrupted || run.Meta.FinishedAt == nil {
		t.Errorf("meta %+v", run.Meta)
	}
	// The report says the run was interrupted and counts the canceled trials in no row.
	sum, err := report.Summarize(run, report.DefaultPercentiles)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Interrupted || sum.Canceled != cfg.Concurrency || len(sum.Rows) != 0 {
		t.Errorf("summary interrupted %v, canceled %d, rows %+v", sum.Interrupted, sum.Canceled, sum.Rows)
	}

	if len(api.tasks) != 0 || len(api.projects) != 0 {
		t.Errorf("left %d tasks, %d projects", len(api.tasks), len(api.projects))
	}
}

func TestNewRejects(t *testing.T) {
	cfg := fakeConfig(t)
	tests := []struct {
		name string
		cfg  bench.Config
		opts []bench.Option
		want string
	}{
		{"no client", cfg, []bench.Option{bench.WithStrategy(&listStrategy{name: "poll"}), bench.WithStrategy(&listStrategy{name: "sdk"})}, "no cvat client"},
		{"override of unconfigured strategy", cfg, []bench.Option{bench.WithAPI(newFakeAPI(newFakeClock())), bench.WithStrategy(&listStrategy{name: "ui"})}, "not among the configured"},
		{"invalid config", bench.Config{}, nil, "invalid config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bench.New(tc.cfg, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestResultsRoundTrip(t *testing.T) {
	cfg := fakeConfig(t)
	clk := newFakeClock()
	run := runFakeSaved(t, cfg, newFakeAPI(clk), clk)
	cfg.Chunks = cfg.ChunkMode() // meta.json names the mode the run used
	if diff := cmp.Diff(cfg, run.Meta.Config); diff != "" {
		t.Errorf("meta config (-want +got):\n%s", diff)
	}
	sum, err := report.Summarize(run, report.DefaultPercentiles)
	if err != nil {
		t.Fatal(err)
	}
	// The summary from raw trials and the .hlog written by the runner agree.
	for _, row := range sum.Rows {
		h := run.Histograms[row.Strategy]
		if h.TotalCount() != row.EndToEnd.N {
			t.Errorf("%s: hlog count %d, summary %d", row.Strategy, h.TotalCount(), row.EndToEnd.N)
		}
		p99, _ := row.EndToEnd.At(99)
		if got := float64(h.ValueAtPercentile(99)) / 1e6; got != p99 {
			t.Errorf("%s: hlog p99 %v ms, summary %v ms", row.Strategy, got, p99)
		}
	}
	// Loading twice gives the same summary (the table is reproducible).
	again, err := report.Load(run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	sum2, _ := report.Summarize(again, report.DefaultPercentiles)
	if diff := cmp.Diff(sum, sum2); diff != "" {
		t.Errorf("summary not reproducible:\n%s", diff)
	}
	// The hlog is a standard HdrHistogram log.
	f, err := os.Open(filepath.Join(run.Dir, "poll.hlog"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lr := hdrhistogram.NewHistogramLogReader(f)
	var tags []string
	for {
		h, err := lr.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		tags = append(tags, h.Tag())
	}
	if !slices.Equal(tags, []string{"poll", "poll.detection"}) {
		t.Errorf("hlog tags %v", tags)
	}
}

// For a log file, progress is plain lines at most one per interval, and always the last state: no carriage
// returns that would make the log one endless line.
func TestProgressLinesForLogs(t *testing.T) {
	cfg := fakeConfig(t) // 6 trials
	clk := newFakeClock()
	var buf strings.Builder
	opts := append(fakeOptions(newFakeAPI(clk), clk, cfg), bench.WithProgressLines(&buf, time.Hour))
	r, err := bench.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if strings.Contains(buf.String(), "\r") || len(lines) != 2 || !strings.HasPrefix(lines[0], "progress: 0/6 trials") ||
		!strings.HasPrefix(lines[1], "progress: 6/6 trials, 0 errors") {
		t.Errorf("progress %q: want the first and the last state, one line each", buf.String())
	}
	if _, err := bench.New(cfg, append(fakeOptions(newFakeAPI(clk), clk, cfg), bench.WithProgressLines(&buf, 0))...); err == nil {
		t.Error("a zero progress interval was accepted")
	}
}

// gateStrategy blocks every Wait until released, counting how many are inside at once.
type gateStrategy struct {
	name    string
	release chan struct{}
	mu      sync.Mutex
	inside  int
	most    int
	entered int
}

func (g *gateStrategy) Name() string { return g.name }

func (g *gateStrategy) Wait(ctx context.Context, api strategies.API, clk strategies.Clock, tr strategies.Trial) (strategies.Outcome, error) {
	g.mu.Lock()
	g.inside++
	g.entered++
	g.most = max(g.most, g.inside)
	g.mu.Unlock()
	defer func() { g.mu.Lock(); g.inside--; g.mu.Unlock() }()
	select {
	case <-g.release:
	case <-ctx.Done():
		return strategies.Outcome{}, ctx.Err()
	}
	return (&listStrategy{name: g.name}).Wait(ctx, api, clk, tr)
}

// In open loop at most --max-in-flight trials run at once: a trial due while they are all in flight is
// dropped (recorded as such, never started) instead of piling up without bound against a server that does
// not keep up, and the report counts the dropped apart from every row.
func TestOpenLoopDropsTrialsBeyondMaxInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fakeConfig(t)
		cfg.Strategies = []string{"poll"}
		cfg.TasksPerStrategy, cfg.Concurrency, cfg.Rate, cfg.MaxInFlight = 5, 0, 1000, 2
		clk := newFakeClock()
		gate := &gateStrategy{name: "poll", release: make(chan struct{})}
		r, err := bench.New(cfg, bench.WithAPI(newFakeAPI(clk)), bench.WithClock(clk), bench.WithStrategy(gate))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan bench.Result, 1)
		go func() {
			res, _ := r.Run(context.Background())
			done <- res
		}()
		synctest.Wait() // every goroutine blocked: the schedule done, two trials at the gate
		gate.mu.Lock()
		inside, entered := gate.inside, gate.entered
		gate.mu.Unlock()
		if inside != 2 || entered != 2 {
			t.Fatalf("%d inside, %d entered; want 2 and 2", inside, entered)
		}
		gate.release <- struct{}{}
		gate.release <- struct{}{}
		res := <-done
		if res.Recorded != 5 || res.Dropped != 3 || res.Errors != 0 || gate.most != 2 {
			t.Fatalf("result %+v, most at once %d; want 5 recorded, 3 dropped, at most 2 at once", res, gate.most)
		}
		run, err := report.Load(filepath.Join(cfg.OutDir, res.RunID))
		if err != nil {
			t.Fatal(err)
		}
		s, err := report.Summarize(run, []float64{50})
		if err != nil {
			t.Fatal(err)
		}
		if s.Dropped != 3 || s.MaxInFlight != 2 || len(s.Rows) != 1 || s.Rows[0].N != 2 {
			t.Errorf("summary dropped %d of max %d, rows %+v; want 3 of 2, one row of n 2", s.Dropped, s.MaxInFlight, s.Rows)
		}
		for _, tr := range run.Trials {
			if tr.Result == record.ResultDropped && (tr.IntendedAt == nil || tr.CreateSentAt != nil || tr.TaskID != 0) {
				t.Errorf("dropped trial %d: %+v; want an intended time and nothing sent", tr.Seq, tr)
			}
		}
	})
}

// --duration ends a run when its time is up: no trial starts after it, those in flight finish, and the
// results are a complete record of a shorter run.
func TestDurationEndsTheRun(t *testing.T) {
	for _, open := range []bool{false, true} {
		cfg := fakeConfig(t)
		cfg.Strategies = []string{"poll"}
		cfg.TasksPerStrategy, cfg.Concurrency, cfg.Duration = 1000, 1, 50*time.Millisecond
		if open {
			cfg.Concurrency, cfg.Rate = 0, 100 // one trial due every 10 ms
		}
		clk := newFakeClock()
		run := runFakeSaved(t, cfg, newFakeAPI(clk), clk)
		n := len(run.Trials)
		if n == 0 || n >= 1000 || !run.Meta.DurationUp || run.Meta.TrialsRecorded != n {
			t.Errorf("open %v: %d trials, duration up %v, meta recorded %d", open, n, run.Meta.DurationUp, run.Meta.TrialsRecorded)
		}
		if open && n != 5 {
			t.Errorf("open loop at 100/s for 50 ms started %d trials, want 5", n)
		}
		for _, tr := range run.Trials {
			if tr.Result != record.ResultOK {
				t.Errorf("trial %d: %s %s", tr.Seq, tr.Result, tr.Error)
			}
		}
	}
}
