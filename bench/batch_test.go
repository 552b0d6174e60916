package bench_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/report"
)

func batchConfig(t *testing.T, strategies ...string) bench.Config {
	cfg := bench.DefaultConfig()
	cfg.Strategies = strategies
	cfg.TasksPerStrategy, cfg.Batch, cfg.Concurrency = 12, 6, 2
	cfg.Images, cfg.ImageSize, cfg.SegmentSizes = 3, "16x12", []int{2}
	cfg.Timeout = 30 * time.Second
	cfg.PollInterval, cfg.SafetyPoll = time.Millisecond, 200*time.Millisecond
	cfg.WebhookListen = "127.0.0.1:0"
	cfg.OutDir = t.TempDir()
	return cfg
}

func runBatch(t *testing.T, srv *cvatsim.Server, base string, cfg bench.Config) (bench.Result, *report.Run) {
	t.Helper()
	admin := loginClient(t, base, "admin", "admin")
	res, run := runOnSim(t, srv, admin, cfg)
	// Whatever happened, the run leaves nothing behind: tasks, batch projects, batch webhooks.
	if n := srv.TaskCount(); n != 0 {
		t.Errorf("%d tasks left on the emulator", n)
	}
	if ps, _ := admin.ListProjects(context.Background(), ""); len(ps) != 0 {
		t.Errorf("%d projects left", len(ps))
	}
	if hs, _ := admin.ListWebhooks(context.Background()); len(hs) != 0 {
		t.Errorf("%d webhooks left", len(hs))
	}
	return res, run
}

// A batch run creates each strategy's tasks six at a time; the project-level strategies cover a batch with
// calls whose cost is shared by its tasks, per-task strategies wait per task; every trial carries its
// batch, and the batch's makespan spans its first create to its last job list.
func TestBatchRun(t *testing.T) {
	srv, base := newSim(t) // every response checked against CVAT's schema
	cfg := batchConfig(t, "project-poll", "project-webhook", "poll")
	res, run := runBatch(t, srv, base, cfg)
	if res.Errors != 0 || len(run.Trials) != cfg.Trials() || len(res.CleanupErrors) != 0 {
		t.Fatalf("result %+v", res)
	}
	batches := map[int][]record.Trial{}
	for _, tr := range run.Trials {
		if tr.Result != record.ResultOK || len(tr.JobIDs) != 2 || tr.BatchSize != 6 || tr.Batch < 1 {
			t.Fatalf("trial %d %s: %s %v batch %d/%d %s", tr.Seq, tr.Strategy, tr.Result, tr.JobIDs, tr.Batch, tr.BatchSize, tr.Error)
		}
		batches[tr.Batch] = append(batches[tr.Batch], tr)
	}
	if len(batches) != cfg.Batches() {
		t.Fatalf("%d batches, want %d", len(batches), cfg.Batches())
	}
	for b, trs := range batches {
		first, last := *trs[0].CreateSentAt, *trs[0].JobsObtainedAt
		for _, tr := range trs {
			if tr.Strategy != trs[0].Strategy {
				t.Errorf("batch %d mixes %s and %s", b, tr.Strategy, trs[0].Strategy)
			}
			first = minTime(first, *tr.CreateSentAt)
			last = maxTime(last, *tr.JobsObtainedAt)
		}
		want := float64(last.Sub(first).Nanoseconds()) / 1e6
		for _, tr := range trs {
			if tr.BatchMakespanMs == nil || *tr.BatchMakespanMs != want {
				t.Errorf("batch %d: makespan %v, want %v", b, tr.BatchMakespanMs, want)
			}
			switch tr.Strategy {
			case "poll":
				if tr.RequestsShare != nil || tr.Requests < 1 {
					t.Errorf("per-task poll: requests %d, share %v", tr.Requests, tr.RequestsShare)
				}
			default:
				if tr.RequestsShare == nil || *tr.RequestsShare <= 0 || tr.Requests != 0 {
					t.Errorf("%s: requests %d, share %v", tr.Strategy, tr.Requests, tr.RequestsShare)
				}
			}
		}
	}
	s, err := report.Summarize(run, report.DefaultPercentiles)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range s.Rows {
		if row.Batches != 2 || row.MakespanP50Ms <= 0 || row.MakespanMaxMs < row.MakespanP50Ms {
			t.Errorf("%s: %d batches, makespan p50 %v max %v", row.Strategy, row.Batches, row.MakespanP50Ms, row.MakespanMaxMs)
		}
		if row.Strategy == "project-poll" && row.RequestsMean >= 1 {
			t.Errorf("project-poll: %.3f requests per task, want well under one", row.RequestsMean)
		}
	}
}

// A batch whose tasks partly fail counts those trials as errors of the wait and still cleans up every task
// it created.
func TestBatchWithFailedCreations(t *testing.T) {
	srv, base := newSim(t)
	f, err := cvatsim.ParseFaults("procfail=0.5")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	cfg := batchConfig(t, "project-poll", "project-webhook")
	cfg.Timeout = 20 * time.Second
	res, run := runBatch(t, srv, base, cfg)
	var failed, ok int
	for _, tr := range run.Trials {
		switch {
		case tr.Result == record.ResultOK:
			ok++
		case tr.FailedIn == record.PhaseWait && tr.ErrorClass == "request_failed":
			failed++
		default:
			t.Errorf("trial %d %s: %s %s in %s: %s", tr.Seq, tr.Strategy, tr.Result, tr.ErrorClass, tr.FailedIn, tr.Error)
		}
	}
	if failed == 0 || ok == 0 || res.Errors != failed {
		t.Errorf("%d ok, %d failed creations, result %+v", ok, failed, res)
	}
	if !slices.ContainsFunc(run.Trials, func(tr record.Trial) bool {
		return tr.Strategy == "project-webhook" && tr.ErrorClass == "request_failed"
	}) {
		t.Errorf("project-webhook saw no failed creation")
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// A server that rejects the project filter fails the run at set-up, in one line, before any task exists,
// and the run's projects are removed.
func TestBatchProjectFilterRejected(t *testing.T) {
	srv, base := newSimBehind(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/jobs" && r.URL.Query().Has("project_id") {
				http.Error(w, `{"project_id":["Unknown filter."]}`, http.StatusBadRequest)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	admin := loginClient(t, base, "admin", "admin")
	r, err := bench.New(batchConfig(t, "project-poll"), bench.WithClient(admin), bench.WithClock(fastClock{}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "strategy project-poll: the server rejects the jobs listing filtered by project") ||
		strings.Contains(err.Error(), "\n") {
		t.Fatalf("Run = %v", err)
	}
	if n := srv.TaskCount(); n != 0 {
		t.Errorf("%d tasks created", n)
	}
	if ps, _ := admin.ListProjects(context.Background(), ""); len(ps) != 0 {
		t.Errorf("%d projects left", len(ps))
	}
}
