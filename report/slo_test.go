package report

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/record"
)

func TestParseSLO(t *testing.T) {
	tests := []struct {
		in   string
		want SLO
		err  string
	}{
		{in: "webhook:p99<2s", want: SLO{Strategy: "webhook", Metric: SLOLatency, Percentile: 99, Limit: 2000}},
		{in: "p50<=750ms", want: SLO{Metric: SLOLatency, Percentile: 50, Inclusive: true, Limit: 750}},
		{in: "p99.9<1m", want: SLO{Metric: SLOLatency, Percentile: 99.9, Limit: 60000}},
		{in: "p100<30s", want: SLO{Metric: SLOLatency, Percentile: 100, Limit: 30000}},
		{in: " poll : detect_p50 < 250ms ", want: SLO{Strategy: "poll", Metric: SLODetection, Percentile: 50, Limit: 250}},
		{in: "errors<1%", want: SLO{Metric: SLOErrors, Limit: 0.01}},
		{in: "errors<=0", want: SLO{Metric: SLOErrors, Inclusive: true, Limit: 0}},
		{in: "ui:errors<0.05", want: SLO{Strategy: "ui", Metric: SLOErrors, Limit: 0.05}},
		{in: "req<10", want: SLO{Metric: SLORequests, Limit: 10}},
		{in: "busyloop:req<=2.5", want: SLO{Strategy: "busyloop", Metric: SLORequests, Inclusive: true, Limit: 2.5}},
		{in: "p99>2s", err: "only < and <="},
		{in: "p99=2s", err: "want [strategy:]metric<value"},
		{in: "latency<2s", err: `unknown metric "latency"`},
		{in: "p<2s", err: `unknown metric "p"`},
		{in: "p1e2<2s", err: `unknown metric "p1e2"`},
		{in: "p0<2s", err: "outside (0, 100]"},
		{in: "p101<2s", err: "outside (0, 100]"},
		{in: "p99<2", err: "needs a unit"},
		{in: "p99<fast", err: "bad duration"},
		{in: "p99<-1s", err: "not positive"},
		{in: "p99<0s", err: "not positive"},
		{in: "errors<150%", err: "outside [0, 1]"},
		{in: "errors<2", err: "outside [0, 1]"},
		{in: "errors<lots", err: "not a number"},
		{in: "req<-1", err: "not a number >= 0"},
		{in: ":p99<2s", err: "empty strategy"},
		{in: "", err: "want [strategy:]metric<value"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSLO(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Text = strings.TrimSpace(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSLOsReportsAll(t *testing.T) {
	_, err := ParseSLOs([]string{"p99<2s", "bogus<1", "p99<2"})
	if err == nil || !strings.Contains(err.Error(), "bogus") || !strings.Contains(err.Error(), "needs a unit") {
		t.Errorf("err %v, want both problems", err)
	}
}

func TestCheckSLOStrategies(t *testing.T) {
	slos, err := ParseSLOs([]string{"poll:p99<2s", "nap:p99<2s", "errors<1%"})
	if err != nil {
		t.Fatal(err)
	}
	err = CheckSLOStrategies(slos, []string{"poll", "sdk"})
	if err == nil || !strings.Contains(err.Error(), `strategy "nap"`) || strings.Contains(err.Error(), `"poll"`) {
		t.Errorf("err %v", err)
	}
	if _, err := EvaluateSLOs(fixtureRun([]int{70}), slos); err == nil {
		t.Error("EvaluateSLOs accepted an unknown strategy")
	}
}

// The fixture: poll p50 ≈ 0.910 s, p99 ≈ 0.960 s, 0 errors, 2.9 requests; sdk p99 ≈ 5.901 s, 1 of 11 timed out;
// ui 2 of 2 failed.
func TestEvaluateSLOs(t *testing.T) {
	tests := []struct {
		name string
		slos []string
		want []string // one line per result: "PASS|FAIL strategy observed"
	}{
		{"latency pass", []string{"poll:p99<1s"}, []string{"ok poll 960.496ms"}},
		{"latency fail", []string{"sdk:p99<2s"}, []string{"FAIL sdk 5.901s"}},
		{"percentile not in the table", []string{"poll:p75<2s"}, []string{"ok poll 940.048ms"}},
		{"no ok trials fails", []string{"ui:p50<1h"}, []string{"FAIL ui n/a"}},
		{"every strategy", []string{"errors<10%"}, []string{"ok poll 0.00%", "ok sdk 9.09%", "FAIL ui 100.00%"}},
		{"strict vs inclusive at the limit", []string{"sdk:req<2", "sdk:req<=2"}, []string{"FAIL sdk 2.00", "ok sdk 2.00"}},
		{"detection", []string{"poll:detect_p99<100ms", "poll:detect_p50<=110ms"}, []string{"FAIL poll 109.052ms", "ok poll 104.006ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			slos, err := ParseSLOs(tc.slos)
			if err != nil {
				t.Fatal(err)
			}
			results, err := EvaluateSLOs(fixtureRun([]int{70}), slos)
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != len(tc.want) {
				t.Fatalf("%d results, want %d: %v", len(results), len(tc.want), results)
			}
			for i, r := range results {
				f := strings.Fields(tc.want[i])
				verdict := map[bool]string{true: "ok", false: "FAIL"}[r.Pass]
				line := r.String()
				if verdict != f[0] || r.Strategy != f[1] || !strings.Contains(line, "= "+f[2]) {
					t.Errorf("result %d: %q, want %q", i, line, tc.want[i])
				}
			}
			if len(Failed(results)) != strings.Count(strings.Join(tc.want, "\n"), "FAIL") {
				t.Errorf("Failed %v", Failed(results))
			}
		})
	}
}

func TestEvaluateSLOsSweepRows(t *testing.T) {
	slos, _ := ParseSLOs([]string{"poll:p50<900ms"})
	results, err := EvaluateSLOs(fixtureRun([]int{30, 90}), slos)
	if err != nil {
		t.Fatal(err)
	}
	// q30 p50 ≈ 870 ms passes, q90 ≈ 930 ms fails: a sweep is checked per quality.
	if len(results) != 2 || !results[0].Pass || results[1].Pass || !strings.Contains(results[1].String(), "poll q90 p50") {
		t.Errorf("results %v", results)
	}
}

// Trials canceled by a Ctrl-C are not the strategy's errors: errors<1% holds for a run whose finished trials
// all succeeded, and the table says the run was interrupted.
func TestCanceledTrialsAreNotErrors(t *testing.T) {
	ok := func(seq int) record.Trial {
		return record.Trial{Seq: seq, Strategy: "poll", ImageQuality: 70, Result: record.ResultOK, EndToEndMs: f(100)}
	}
	run := &Run{Meta: record.Meta{Interrupted: true, Config: bench.Config{Strategies: []string{"poll"}, ImageQualities: []int{70}}},
		Trials: []record.Trial{ok(0), ok(1), {Seq: 2, Strategy: "poll", ImageQuality: 70, Result: record.ResultCanceled, ErrorClass: "canceled"}}}
	slos, err := ParseSLOs([]string{"errors<1%"})
	if err != nil {
		t.Fatal(err)
	}
	results, err := EvaluateSLOs(run, slos)
	if err != nil || len(Failed(results)) != 0 {
		t.Errorf("errors<1%%: %v, %v", results, err)
	}
	var b strings.Builder
	if _, err := Render(&b, run, Options{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "run interrupted: 1 trials canceled") || !strings.Contains(b.String(), "| poll     | 2 |   0 |") {
		t.Errorf("table:\n%s", b.String())
	}
}
