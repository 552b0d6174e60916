package bench_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/strategies"
)

// heavyFaults is the fault mix of TestEveryStrategyUnderFaults: every HTTP, processing and webhook fault, often.
const heavyFaults = "http5xx=0.2,http429=0.05,reset=0.05,procfail=0.1,expire=0.1,hookdrop=0.3,hookdup=0.2," +
	"hookdelay=0.1:5ms,hookbadsig=0.1,redis503=0.1"

// TestEveryStrategyUnderFaults runs all strategies against the instant emulator with a heavy fault mix, through
// the real client over real HTTP, and checks that the run is honest: it returns, records every planned trial,
// each trial is ok or carries an error class, ok trials have ordered timestamps, their latency from the
// same start, and exactly the emulator's job IDs, and nothing is left running afterwards.
func TestEveryStrategyUnderFaults(t *testing.T) {
	before := runtime.NumGoroutine()
	faults, err := cvatsim.ParseFaults(heavyFaults)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := cvatsim.LookupProfile("instant")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := cvatsim.New(cvatsim.Options{Profile: prof, Seed: 5, WebhookRetryDelays: []time.Duration{time.Millisecond, 2 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	closeAll := func() {
		srv.Close()
		hs.Close()
		hc.CloseIdleConnections()
	}
	defer closeAll()

	key, err := cvat.Login(context.Background(), hs.URL, "admin", "admin", hc)
	if err != nil {
		t.Fatal(err)
	}
	client, err := cvat.New(cvat.Config{BaseURL: hs.URL, Auth: cvat.Token(key), HTTPClient: hc,
		Retry: cvat.RetryPolicy{MaxAttempts: 4, Initial: time.Millisecond, Max: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SetFaults(faults); err != nil { // after the login: the run's own setup is faulted too
		t.Fatal(err)
	}

	cfg := bench.DefaultConfig()
	cfg.Strategies = strategies.Defaults()
	cfg.TasksPerStrategy = 4
	cfg.Concurrency = 8
	cfg.Images = 2
	cfg.ImageSize = "8x6"
	cfg.ImageFormat = "png"
	cfg.SegmentSizes = []int{1}
	cfg.UploadMode = "single"
	cfg.Timeout = 2 * time.Second
	cfg.PollInterval, cfg.SDKPeriod, cfg.CLIPeriod = 2*time.Millisecond, 2*time.Millisecond, 2*time.Millisecond
	cfg.BackoffInitial, cfg.BackoffMax, cfg.SafetyPoll = time.Millisecond, 4*time.Millisecond, 20*time.Millisecond
	cfg.WebhookListen = "127.0.0.1:0"
	cfg.OutDir = t.TempDir()
	res, run := runOnSim(t, srv, client, cfg)
	if len(run.Trials) != cfg.Trials() || res.Recorded != cfg.Trials() {
		t.Fatalf("%d trials recorded (result %d), planned %d", len(run.Trials), res.Recorded, cfg.Trials())
	}
	ok := 0
	for _, tr := range run.Trials {
		switch tr.Result {
		case record.ResultOK:
			ok++
			tl, known := srv.Timeline(tr.TaskID)
			if !known || !slices.Equal(tr.JobIDs, tl.JobIDs) || tl.Failed {
				t.Errorf("%s #%d: job ids %v, emulator %v (failed %v)", tr.Strategy, tr.Seq, tr.JobIDs, tl.JobIDs, tl.Failed)
			}
			seq := []*time.Time{tr.CreateSentAt, tr.TaskCreatedAt, tr.UploadDoneAt, tr.JobsObtainedAt}
			for i := 1; i < len(seq); i++ {
				if seq[i] == nil || seq[i-1] == nil || seq[i].Before(*seq[i-1]) {
					t.Errorf("%s #%d: timestamps out of order: %v", tr.Strategy, tr.Seq, seq)
					break
				}
			}
			if want := float64(tr.JobsObtainedAt.Sub(*tr.CreateSentAt)) / float64(time.Millisecond); tr.EndToEndMs == nil || *tr.EndToEndMs != want {
				t.Errorf("%s #%d: end to end %v ms, want %v from the create", tr.Strategy, tr.Seq, tr.EndToEndMs, want)
			}
		case record.ResultTimeout, record.ResultError:
			if tr.ErrorClass == "" || tr.Error == "" {
				t.Errorf("%s #%d: %s without class or message: %+v", tr.Strategy, tr.Seq, tr.Result, tr)
			}
		default:
			t.Errorf("%s #%d: result %q", tr.Strategy, tr.Seq, tr.Result)
		}
	}
	counts := srv.FaultCounts()
	t.Logf("%d of %d trials ok; faults injected: %v; cleanup errors: %v", ok, len(run.Trials), counts, res.CleanupErrors)
	for _, k := range []string{"http5xx", "reset"} {
		if counts[k] == 0 {
			t.Errorf("fault %s never injected: the mix did not bite", k)
		}
	}
	if counts["procfail"]+counts["expire"]+counts["hookdrop"]+counts["hookdup"]+counts["hookdelay"]+counts["hookbadsig"] == 0 {
		t.Error("no processing or webhook fault injected")
	}
	for _, tr := range run.Trials {
		if tr.Result != record.ResultOK {
			t.Logf("%-8s #%-2d %-7s %-15s %s", tr.Strategy, tr.Seq, tr.Result, tr.ErrorClass, tr.Error)
		}
	}
	if ok == 0 {
		t.Error("no trial succeeded under faults")
	}

	closeAll()
	// Goroutines end asynchronously after Close (connection read loops see EOF): allow them a bounded moment,
	// as goleak does, then compare.
	deadline := time.Now().Add(5 * time.Second)
	var now int
	for now = runtime.NumGoroutine(); now > before+3 && time.Now().Before(deadline); now = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	if now > before+3 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after\n%s", before, now, buf[:runtime.Stack(buf, true)])
	}
}
