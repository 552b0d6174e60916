package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/prom"
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/internal/schemacheck"
	"github.com/cvatbench/cvatbench/report"
)

// Polling an external process (Prometheus, the Pushgateway) for a condition, with a bounded deadline, is
// the one place we wait by looking: there is no notification to wait on.
const (
	pollEvery    = 50 * time.Millisecond
	pollDeadline = 20 * time.Second
)

// lookBinary finds an external server for the integration test: env var first, then PATH names.
func lookBinary(t *testing.T, env string, names ...string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found: install it (Debian: apt-get install %s) or set %s to its path",
		names[0], names[0], env)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freeAddr returns a loopback address that was free a moment ago (the servers under test take flags, not
// listeners).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// syncBuffer collects a process's output for the failure message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProcess runs bin until the test ends and waits until readyURL answers 200.
func startProcess(t *testing.T, readyURL, bin string, args ...string) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // our own child, by handle
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out.String())
		}
	})
	poll(t, "ready: "+readyURL, func() (bool, error) {
		resp, err := http.Get(readyURL)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return out
}

// poll checks cond every pollEvery until it holds, failing the test after pollDeadline.
func poll(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(pollDeadline)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v (last: %v)", what, pollDeadline, last)
		}
		time.Sleep(pollEvery)
	}
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float() float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// instantQuery runs expr through Prometheus's HTTP API; a syntax error comes back as an error.
func instantQuery(base, expr string) ([]promSample, error) {
	resp, err := http.PostForm(base+"/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", expr, body.Error)
	}
	return body.Data.Result, nil
}

// dashboardExprs returns every PromQL expression of the shipped dashboard with Grafana's variables replaced
// as "All" and default intervals would.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/grafana/cvatbench.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var raw []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			raw = append(raw, tg.Expr)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			raw = append(raw, a.Expr)
		}
	}
	r := strings.NewReplacer("$strategy", ".*", "$target", ".*", "$result", ".*",
		"$__rate_interval", "1m", "$__range", "5m", "$__interval", "15s")
	out := make([]string, len(raw))
	for i, e := range raw {
		out[i] = r.Replace(e)
	}
	return out
}

// TestMetricsWithRealPrometheus runs a short benchmark on the embedded emulator with metrics served and pushed,
// scraped by a real Prometheus (live endpoint and Pushgateway, honor_labels), and checks that every dashboard
// expression returns data and that the bucketed p50 agrees with the exact HDR p50.
func TestMetricsWithRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and the Pushgateway")
	}
	promBin := lookBinary(t, "CVATBENCH_PROMETHEUS", "prometheus")
	pgwBin := lookBinary(t, "CVATBENCH_PUSHGATEWAY_BIN", "prometheus-pushgateway", "pushgateway")
	dir := t.TempDir()

	pgwAddr, promAddr, metricsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	startProcess(t, "http://"+pgwAddr+"/-/ready", pgwBin, "--web.listen-address="+pgwAddr, "--persistence.file=")

	// The shipped deploy/prometheus/prometheus.yml targets Prometheus >= 3.9 (scrape_protocols, native
	// histograms), which this 2.x cannot parse; the jobs are the same. The live job is deliberately not
	// called "cvatbench": the dashboard must not depend on the job name.
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: cvatbench-live
    static_configs:
      - targets: ['%s']
        labels:
          target: emulator
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ['%s']
`, metricsAddr, pgwAddr)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	promURL := "http://" + promAddr
	startProcess(t, promURL+"/-/ready", promBin, "--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)

	// The embedded emulator: instant, except that processing takes 0.5-1.5 s, so the time to jobs spreads over
	// a few classic buckets and the bucketed p50 is an interpolation, not the edge of the first bucket.
	prof, err := cvatsim.LookupProfile("instant")
	if err != nil {
		t.Fatal(err)
	}
	prof.Processing = cvatsim.Dist{Base: 400 * time.Millisecond, Median: 400 * time.Millisecond, Sigma: 0.4}
	sim, err := cvatsim.New(cvatsim.Options{Profile: prof, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	hs := httptest.NewServer(schemacheck.Load(t).Middleware(t, sim.Handler())) // every response checked against CVAT's schema
	defer hs.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key, err := cvat.Login(ctx, hs.URL, "admin", "admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := cvat.New(cvat.Config{BaseURL: hs.URL, Auth: cvat.Token(key)})
	if err != nil {
		t.Fatal(err)
	}

	strategies := []string{"poll", "sdk"}
	args := []string{"--metrics-addr", metricsAddr, "--linger", "1m", "--pushgateway", "http://" + pgwAddr,
		"--target", "emulator", "--strategies", strings.Join(strategies, ",")}
	var records []record.Trial
	err = metricsApp(ctx, args, io.Discard, func(c *cli.Context) error {
		ms, err := startMetrics(c, buildMeta{Version: "v0.0.0-test", Commit: "integration"})
		if err != nil {
			return err
		}
		defer ms.Close()
		// Wait for a scrape of the zero-valued series, so rate() sees the run's increase.
		poll(t, "first scrape of the live endpoint", func() (bool, error) {
			res, err := instantQuery(promURL, `cvatbench_tasks_total{job="cvatbench-live"}`)
			return len(res) > 0, err
		})

		bcfg := bench.DefaultConfig()
		bcfg.Strategies = strategies
		bcfg.TasksPerStrategy = 6
		bcfg.Concurrency = 2
		bcfg.Images = 2
		bcfg.ImageSize = "64x48"
		bcfg.SimProfile = "instant"
		bcfg.OutDir = filepath.Join(dir, "results")
		bcfg.PollInterval = 20 * time.Millisecond
		bcfg.SDKPeriod = 20 * time.Millisecond
		runner, err := bench.New(bcfg, bench.WithClient(client), bench.WithObserver(ms.Observer()),
			bench.WithGroundTruth(func(_ context.Context, id int) (time.Time, bool, error) {
				tl, ok := sim.Timeline(id)
				return tl.JobsVisibleAt, ok && !tl.JobsVisibleAt.IsZero(), nil
			}))
		if err != nil {
			return err
		}
		start := time.Now()
		res, err := runner.Run(c.Context)
		if err != nil {
			return err
		}
		loaded, err := report.Load(res.Dir)
		if err != nil {
			return err
		}
		records = loaded.Trials

		// Finish pushes, then lingers until we have seen what we need and cancel it.
		lingerCtx, stopLinger := context.WithCancel(c.Context)
		finished := make(chan error, 1)
		go func() { finished <- ms.Finish(lingerCtx, records, time.Since(start), 0, true) }()
		checkDashboard(t, promURL)
		stopLinger()
		return <-finished
	})
	if err != nil {
		t.Fatal(err)
	}
	checkQuantiles(t, promURL, records, "poll")
}

// checkDashboard waits until every dashboard expression returns data (the end-of-run series need the push
// and the next scrape).
func checkDashboard(t *testing.T, promURL string) {
	t.Helper()
	exprs := dashboardExprs(t)
	if len(exprs) < 10 {
		t.Fatalf("only %d dashboard expressions", len(exprs))
	}
	pending := map[string]error{}
	for _, e := range exprs {
		pending[e] = nil
	}
	deadline := time.Now().Add(pollDeadline)
	for len(pending) > 0 {
		for e := range pending {
			res, err := instantQuery(promURL, e)
			switch {
			case err != nil:
				pending[e] = err
				if strings.Contains(err.Error(), "parse error") {
					t.Fatalf("dashboard expression does not parse: %v", err)
				}
			case len(res) == 0:
				pending[e] = fmt.Errorf("no data")
			default:
				delete(pending, e)
			}
		}
		if len(pending) > 0 && time.Now().After(deadline) {
			for e, err := range pending {
				t.Errorf("dashboard expression returns no data within %v: %s (%v)", pollDeadline, e, err)
			}
			t.FailNow()
		}
		if len(pending) > 0 {
			time.Sleep(pollEvery)
		}
	}
}

// checkQuantiles compares Prometheus's view with the exact HDR quantile of the records: the pushed summary
// must carry the HDR value itself, and histogram_quantile over the live buckets must land within the width of
// the bucket that holds it.
func checkQuantiles(t *testing.T, promURL string, records []record.Trial, strategy string) {
	t.Helper()
	h := record.NewHistogram()
	for _, r := range records {
		if r.Strategy == strategy && r.Result == record.ResultOK && r.EndToEndMs != nil {
			if err := h.RecordValue(int64(math.Round(*r.EndToEndMs * 1e6))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if h.TotalCount() == 0 {
		t.Fatalf("no ok trials of %s: %+v", strategy, records)
	}
	hdrP50 := float64(h.ValueAtQuantile(50)) / 1e9

	// The pushed group reaches Prometheus with the next scrape of the Pushgateway.
	pushedQuery := fmt.Sprintf(
		`cvatbench_run_time_to_jobs_seconds{job="cvatbench", instance="", target="emulator", strategy=%q, quantile="0.5"}`, strategy)
	var pushed []promSample
	poll(t, "pushed summary scraped", func() (bool, error) {
		var err error
		pushed, err = instantQuery(promURL, pushedQuery)
		return len(pushed) == 1, err
	})
	if got := pushed[0].float(); got != hdrP50 {
		t.Errorf("pushed p50 = %v, want the HDR value %v", got, hdrP50)
	}

	live, err := instantQuery(promURL, fmt.Sprintf(
		`histogram_quantile(0.5, sum by (le) (rate(cvatbench_time_to_jobs_seconds_bucket{strategy=%q, result="ok"}[1m])))`, strategy))
	if err != nil || len(live) != 1 {
		t.Fatalf("live p50: %v %+v", err, live)
	}
	lower, upper := 0.0, math.Inf(1)
	for _, b := range prom.TimeToJobsBuckets {
		if hdrP50 <= b {
			upper = b
			break
		}
		lower = b
	}
	got := live[0].float()
	if math.IsNaN(got) || math.Abs(got-hdrP50) > upper-lower {
		t.Errorf("histogram_quantile p50 = %v, HDR p50 = %v: differ by more than the bucket width %v (bucket %v..%v)",
			got, hdrP50, upper-lower, lower, upper)
	}
	t.Logf("%s p50: HDR %.4fs, pushed %.4fs, histogram_quantile %.4fs (bucket %v..%v)", strategy, hdrP50,
		pushed[0].float(), got, lower, upper)
}
