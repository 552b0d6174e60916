package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/report"
)

// writeResults saves a small synthetic results directory (meta.json, trials.jsonl; no .hlog, as after a crash)
// with n ok trials per strategy whose end-to-end latency is about scale × 1 s.
func writeResults(t *testing.T, id string, n int, scale float64, strategies ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := record.Meta{RunID: id, StartedAt: time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC),
		Config: bench.Config{Strategies: strategies, ImageQualities: []int{70}}}
	b, _ := json.Marshal(meta)
	if err := os.WriteFile(filepath.Join(dir, record.MetaFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	for i := range n {
		for j, s := range strategies {
			e2e := scale * (900 + 200*math.Sin(float64(i*7+j))) // deterministic spread
			det := 20 + float64(i%5)
			rec := record.Trial{RunID: id, Seq: i*len(strategies) + j, Strategy: s, ImageQuality: 70, Result: record.ResultOK,
				EndToEndMs: &e2e, DetectionDelayMs: &det, Requests: 2 + i%2}
			b, _ := json.Marshal(rec)
			lines.Write(append(b, '\n'))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, record.TrialsFile), lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func cvatbench(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"cvatbench"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestReportReproducesRunOutput(t *testing.T) {
	out := t.TempDir()
	code, table, stderr := cvatbench("run", "--sim-profile", "instant", "--strategies", "poll,backoff", "--tasks", "3",
		"--concurrency", "2", "--images", "2", "--image-size", "16x16", "--poll-interval", "5ms", "--out", out)
	if code != exitOK {
		t.Fatalf("run exit %d: %s", code, stderr)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(dirs) != 1 {
		t.Fatalf("results %v", dirs)
	}
	code, again, stderr := cvatbench("report", dirs[0])
	if code != exitOK || again != table {
		t.Fatalf("report exit %d (%s); differs from run's output:\n%s\nvs\n%s", code, stderr, again, table)
	}
	if !strings.Contains(table, "measured on: emulator profile instant\n") {
		t.Errorf("the table does not name what it measured:\n%s", table)
	}
	for _, format := range []string{"markdown", "csv", "json"} {
		t.Run(format, func(t *testing.T) {
			code, got, stderr := cvatbench("report", "--format", format, "--percentiles", "50,99.9", dirs[0])
			if code != exitOK || !strings.Contains(got, "backoff") {
				t.Fatalf("exit %d (%s):\n%s", code, stderr, got)
			}
			if format == "json" && !json.Valid([]byte(got)) {
				t.Errorf("invalid JSON:\n%s", got)
			}
		})
	}
	code, _, stderr = cvatbench("report", "--plots", "--html", dirs[0])
	if code != exitOK {
		t.Fatalf("report --plots --html exit %d: %s", code, stderr)
	}
	for _, f := range []string{"plots/percentiles.svg", "plots/percentiles.png", "plots/frontier.svg", "plots/frontier.png", "report.html"} {
		if _, err := os.Stat(filepath.Join(dirs[0], f)); err != nil {
			t.Error(err)
		}
	}
}

func TestReportBadInputIsExit2(t *testing.T) {
	dir := writeResults(t, "r1", 5, 1, "poll", "sdk")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no directory", []string{"report"}, "want one results directory"},
		{"two directories without merge", []string{"report", dir, dir}, "--merge"},
		{"flag after the directory", []string{"report", dir, "--format", "csv"}, "flags go first"},
		{"unknown format", []string{"report", "--format", "md", dir}, `unknown format "md"`},
		{"percentile zero", []string{"report", "--percentiles", "0,50", dir}, "outside (0, 100]"},
		{"percentile above 100", []string{"report", "--percentiles", "101", dir}, "outside (0, 100]"},
		{"not a number", []string{"report", "--percentiles", "fifty", dir}, "fifty"},
		{"unknown slo metric", []string{"report", "--slo", "latency<2s", dir}, `unknown metric "latency"`},
		{"slo without unit", []string{"report", "--slo", "p99<2", dir}, "needs a unit"},
		{"slo unknown strategy", []string{"report", "--slo", "webhook:p99<2s", dir}, `strategy "webhook" is not in the run (poll, sdk)`},
		{"out without merge", []string{"report", "--out", "x", dir}, "--out only applies"},
		{"merge of one", []string{"report", "--merge", dir}, "at least two"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cvatbench(tc.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("stderr %q, want one line with %q", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q on bad input", stdout)
			}
		})
	}
	if code, _, _ := cvatbench("report", filepath.Join(dir, "missing")); code != exitRuntime {
		t.Errorf("missing directory: exit %d, want %d", code, exitRuntime)
	}
}

func TestReportSLO(t *testing.T) {
	dir := writeResults(t, "r1", 10, 1, "poll", "sdk") // p99 ≈ 1.1 s, 0 errors, 2.5 requests
	tests := []struct {
		name     string
		slos     []string
		code     int
		contains []string
	}{
		{"all pass", []string{"p99<2s", "errors<1%", "req<=3"}, exitOK, []string{"slo ok   p99<2s: poll p99 = "}},
		{"one breach", []string{"poll:p50<100ms", "errors<1%"}, exitThreshold,
			[]string{"slo FAIL poll:p50<100ms: poll p50 = ", "1 of 3 SLO checks failed"}},
		{"detection", []string{"sdk:detect_p50<1ms"}, exitThreshold, []string{"slo FAIL sdk:detect_p50<1ms: sdk detect_p50 = 22.004ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, s := range tc.slos {
				args = append(args, "--slo", s)
			}
			code, stdout, stderr := cvatbench(append(append([]string{"report"}, args...), dir)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			if !strings.HasPrefix(stdout, "+----------+") { // the table is printed before the verdict
				t.Errorf("stdout %q", stdout)
			}
			for _, want := range tc.contains {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}

func TestRunSLO(t *testing.T) {
	args := []string{"run", "--sim-profile", "instant", "--strategies", "poll", "--tasks", "2", "--concurrency", "1",
		"--images", "1", "--image-size", "16x16", "--poll-interval", "5ms"}
	t.Run("unknown metric fails before running", func(t *testing.T) {
		out := t.TempDir()
		code, _, stderr := cvatbench(append(args, "--out", out, "--slo", "p99<2s", "--slo", "throughput<1")...)
		if code != exitUsage || !strings.Contains(stderr, `unknown metric "throughput"`) {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if dirs, _ := filepath.Glob(filepath.Join(out, "*")); len(dirs) != 0 {
			t.Errorf("a run started: %v", dirs)
		}
	})
	t.Run("unknown strategy fails before running", func(t *testing.T) {
		code, _, stderr := cvatbench(append(args, "--out", t.TempDir(), "--slo", "webhook:p99<2s")...)
		if code != exitUsage || !strings.Contains(stderr, `strategy "webhook" is not in the run (poll)`) {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("breach exits 4 after the table", func(t *testing.T) {
		code, stdout, stderr := cvatbench(append(args, "--out", t.TempDir(), "--slo", "poll:p50<1ns", "--slo", "errors<=0")...)
		if code != exitThreshold {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if !strings.Contains(stdout, "| poll ") || !strings.Contains(stderr, "slo FAIL poll:p50<1ns") ||
			!strings.Contains(stderr, "slo ok   errors<=0: poll errors = 0.00%") {
			t.Errorf("stdout %q\nstderr %q", stdout, stderr)
		}
	})
}

func TestReportMerge(t *testing.T) {
	a := writeResults(t, "run-a", 6, 1, "poll", "sdk")
	b := writeResults(t, "run-b", 4, 1.2, "poll", "sdk")
	out := filepath.Join(t.TempDir(), "merged")
	code, stdout, stderr := cvatbench("report", "--merge", "--out", out, "--format", "csv", a, b)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "poll,70,10,10,0,") || !strings.Contains(stderr, "merged 2 runs (20 trials) into "+out) {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
	for _, f := range []string{"meta.json", "trials.jsonl", "merged.json", "poll.hlog", "sdk.hlog"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	// The merged directory is an ordinary results directory.
	if code, again, stderr := cvatbench("report", "--format", "csv", out); code != exitOK || again != stdout {
		t.Errorf("report of the merge: exit %d %s\n%s\nvs\n%s", code, stderr, again, stdout)
	}
	if code, _, stderr := cvatbench("report", "--merge", "--out", out, a, b); code != exitRuntime || !strings.Contains(stderr, "exists") {
		t.Errorf("merge into an existing directory: exit %d %q", code, stderr)
	}
}

func TestCompareCommand(t *testing.T) {
	a := writeResults(t, "run-a", 20, 1, "poll", "sdk")
	slow := writeResults(t, "run-slow", 20, 1.5, "poll", "sdk")
	t.Run("itself", func(t *testing.T) {
		code, stdout, stderr := cvatbench("compare", a, a)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if strings.Contains(stdout, "| worse") || strings.Contains(stdout, "| better") || strings.Count(stdout, "| ~ ") != 8 {
			t.Errorf("a run against itself:\n%s", stdout)
		}
	})
	t.Run("slower", func(t *testing.T) {
		code, stdout, _ := cvatbench("compare", "--format", "json", a, slow)
		if code != exitOK {
			t.Fatalf("exit %d", code)
		}
		var c struct {
			Changes []struct{ Strategy, Metric, Verdict string }
		}
		if err := json.Unmarshal([]byte(stdout), &c); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, ch := range c.Changes {
			got[ch.Strategy+"/"+ch.Metric] = ch.Verdict
		}
		if got["poll/p50_ms"] != "worse" || got["sdk/p99_ms"] != "worse" || got["poll/req_mean"] != "~" {
			t.Errorf("verdicts %v", got)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"one directory", []string{a}, "want two results directories"},
		{"csv", []string{"--format", "csv", a, a}, `unknown format "csv"`},
		{"few resamples", []string{"--resamples", "10", a, a}, "--resamples 10"},
		{"confidence", []string{"--confidence", "95", a, a}, "--confidence 95"},
		{"flag after", []string{a, a, "--seed", "2"}, "flags go first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := cvatbench(append([]string{"compare"}, tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q, want %q", code, stderr, tc.want)
			}
		})
	}
}

// Runs written by bench itself (its .hlog writer), merged: the table from the merged histograms equals the
// table from the concatenated raw trials.
func TestMergeOfRealRunsIsExact(t *testing.T) {
	out := t.TempDir()
	for seed := range 2 {
		code, _, stderr := cvatbench("run", "--sim-profile", "instant", "--strategies", "poll,backoff", "--tasks", "4",
			"--concurrency", "2", "--images", "1", "--image-size", "16x16", "--poll-interval", "5ms",
			"--seed", strconv.Itoa(seed+1), "--out", out)
		if code != exitOK {
			t.Fatalf("run exit %d: %s", code, stderr)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(dirs) != 2 {
		t.Fatalf("results %v", dirs)
	}
	merged := filepath.Join(t.TempDir(), "merged")
	code, _, stderr := cvatbench("report", "--merge", "--out", merged, dirs[0], dirs[1])
	if code != exitOK || strings.Contains(stderr, "warning") {
		t.Fatalf("merge exit %d: %s", code, stderr)
	}
	run, err := report.Load(merged)
	if err != nil {
		t.Fatal(err)
	}
	fromHist, err := report.SummarizeHistograms(run, report.DefaultPercentiles)
	if err != nil {
		t.Fatal(err)
	}
	fromTrials, err := report.Summarize(run, report.DefaultPercentiles)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromTrials, fromHist); diff != "" {
		t.Errorf("merged histograms vs concatenated trials (-trials +hist):\n%s", diff)
	}
	if fromTrials.Rows[0].N != 8 || len(run.Trials) != 16 {
		t.Errorf("rows %+v, %d trials", fromTrials.Rows, len(run.Trials))
	}
}

// TestReportRefusesDamagedTrials: report, compare and --merge refuse a trials.jsonl that cannot be the run's
// record, with one line that says why, instead of rendering a smaller or forged table.
func TestReportRefusesDamagedTrials(t *testing.T) {
	out := t.TempDir()
	code, _, stderr := cvatbench("run", "--sim-profile", "instant", "--strategies", "poll,sdk", "--tasks", "4",
		"--concurrency", "2", "--images", "1", "--image-size", "16x16", "--sdk-period", "1ms", "--out", out, "--quiet")
	if code != exitOK {
		t.Fatalf("run exit %d: %s", code, stderr)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	good := dirs[0]
	trials, err := os.ReadFile(filepath.Join(good, "trials.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(trials), "\n"), "\n")
	if len(lines) != 8 {
		t.Fatalf("%d lines", len(lines))
	}
	cases := []struct {
		name, content, want string
	}{
		{"cut in half", strings.Join(lines[:3], "") + lines[3][:len(lines[3])/2], "3 complete records and a cut-off last line, but meta.json says the finished run recorded 8"},
		{"empty", "", "0 complete records, but meta.json says the finished run recorded 8"},
		{"null record", string(trials) + "null\n", `record 9: run_id "" is not this run's`},
		{"empty object", "{}\n" + string(trials), `record 1: run_id "" is not this run's`},
		{"another run", strings.Replace(string(trials), `"run_id":"`, `"run_id":"x`, 1), "is not this run's"},
		{"a strategy not in meta", strings.Replace(string(trials), `"strategy":"poll"`, `"strategy":"`+strings.Repeat("p", 5<<20)+`"`, 1), `pp"... is not among meta.json's strategies`},
		{"a trial twice", string(trials) + lines[0], "appears twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), filepath.Base(good))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"meta.json", "poll.hlog", "sdk.hlog"} {
				b, _ := os.ReadFile(filepath.Join(good, f))
				_ = os.WriteFile(filepath.Join(dir, f), b, 0o644)
			}
			if err := os.WriteFile(filepath.Join(dir, "trials.jsonl"), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"report", dir}, {"compare", good, dir}, {"report", "--merge", "--out", filepath.Join(t.TempDir(), "m"), good, dir}} {
				code, stdout, stderr := cvatbench(args...)
				if code != exitRuntime || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || len(stderr) > 1000 || stdout != "" {
					t.Errorf("%s: exit %d, stdout %d bytes, stderr %.300q; want exit 1 and one line with %q", args[0], code, len(stdout), stderr, tc.want)
				}
			}
		})
	}
}

// TestCompareFailOnWorse: compare names the configuration differences of its two runs, and --fail-on worse
// exits 4 on a regression (here, the same workload on a slower emulator profile) and 0 without one.
func TestCompareFailOnWorse(t *testing.T) {
	runDir := func(profile string) string {
		out := t.TempDir()
		code, _, stderr := cvatbench("run", "--sim-profile", profile, "--strategies", "poll", "--tasks", "5",
			"--concurrency", "1", "--images", "1", "--image-size", "16x16", "--poll-interval", "20ms", "--quiet", "--out", out)
		if code != exitOK {
			t.Fatalf("run %s: exit %d: %s", profile, code, stderr)
		}
		dirs, _ := filepath.Glob(filepath.Join(out, "*"))
		return dirs[0]
	}
	fast, slow := runDir("instant"), runDir("cvat-default")
	code, stdout, stderr := cvatbench("compare", "--fail-on", "worse", fast, slow)
	if code != exitThreshold || !strings.Contains(stderr, "changes worse: poll p50_ms") ||
		!strings.Contains(stdout, `configuration: runs`) || !strings.Contains(stdout, `differ in sim_profile: "instant" vs "cvat-default"`) {
		t.Errorf("regression: exit %d\nstdout:\n%s\nstderr: %s", code, stdout, stderr)
	}
	if code, _, stderr := cvatbench("compare", "--fail-on", "worse", slow, fast); code != exitOK {
		t.Errorf("improvement: exit %d: %s", code, stderr)
	}
}
