package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func f(v float64) *float64 { return &v }

// fixtureRun is a small, fixed run: poll fast and steady, sdk slow with one timeout, ui all failed.
func fixtureRun(qualities []int) *Run {
	start := time.Date(2026, 11, 27, 0, 15, 0, 0, time.UTC)
	run := &Run{Meta: bench.Meta{RunID: "20261127T001500Z-3f9a", StartedAt: start,
		Config:      bench.Config{Strategies: []string{"poll", "sdk", "ui"}, ImageQualities: qualities},
		ClockOffset: bench.OffsetStats{MaxErrorMs: 1.5}}}
	seq := 0
	add := func(rec bench.TrialRecord) {
		rec.RunID, rec.Seq = run.Meta.RunID, seq
		seq++
		run.Trials = append(run.Trials, rec)
	}
	for _, q := range qualities {
		for i := range 10 {
			add(bench.TrialRecord{Strategy: "poll", ImageQuality: q, Result: bench.ResultOK,
				EndToEndMs: f(800 + float64(i*10+q)), DetectionDelayMs: f(100 + float64(i)),
				Requests: 2 + i%3, JobsVisibleSource: bench.VisibleFromServerFinished})
			add(bench.TrialRecord{Strategy: "sdk", ImageQuality: q, Result: bench.ResultOK,
				EndToEndMs: f(5000 + float64(i*100)), DetectionDelayMs: f(4200 + float64(i*50)),
				Requests: 2, JobsVisibleSource: bench.VisibleFromServerFinished})
		}
		add(bench.TrialRecord{Strategy: "sdk", ImageQuality: q, Result: bench.ResultTimeout, ErrorClass: "timeout"})
		add(bench.TrialRecord{Strategy: "ui", ImageQuality: q, Result: bench.ResultError, ErrorClass: "http_5xx"})
		add(bench.TrialRecord{Strategy: "ui", ImageQuality: q, Result: bench.ResultError, ErrorClass: "canceled"})
	}
	return run
}

func TestTableGolden(t *testing.T) {
	tests := []struct {
		name        string
		qualities   []int
		percentiles []float64
		markdown    bool
	}{
		{"ascii", []int{70}, DefaultPercentiles, false},
		{"markdown", []int{70}, DefaultPercentiles, true},
		{"sweep_ascii", []int{30, 90}, []float64{50, 99.9}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Summarize(fixtureRun(tc.qualities), tc.percentiles)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := Table(s, tc.markdown)(&buf); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "table_"+tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./report -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("table differs from %s:\n got:\n%s\nwant:\n%s", golden, buf.String(), want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	s, err := Summarize(fixtureRun([]int{70}), []float64{50, 100})
	if err != nil {
		t.Fatal(err)
	}
	if s.Sweep || len(s.Rows) != 3 {
		t.Fatalf("summary %+v", s)
	}
	tests := []struct {
		row                 Row
		wantN, wantOK       int
		wantP50, wantMax    float64
		wantClasses         string
		wantReqMean         float64
		wantReqP50, wantDet int64
	}{
		{s.Rows[0], 10, 10, 910, 960, "map[]", 2.9, 3, 10},
		{s.Rows[1], 11, 10, 5400, 5900, "map[timeout:1]", 2, 2, 10},
		{s.Rows[2], 2, 0, 0, 0, "map[canceled:1 http_5xx:1]", 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.row.Strategy, func(t *testing.T) {
			r := tc.row
			if r.N != tc.wantN || r.OK != tc.wantOK || r.Errors != tc.wantN-tc.wantOK {
				t.Errorf("n %d ok %d err %d", r.N, r.OK, r.Errors)
			}
			if got := fmt.Sprint(r.ErrorsByClass); got != tc.wantClasses && !(got == "map[]" && tc.wantClasses == "map[]") {
				t.Errorf("classes %s, want %s", got, tc.wantClasses)
			}
			p50, ok := r.EndToEnd.At(50)
			if tc.wantOK > 0 && (!ok || !near(p50, tc.wantP50) || !near(r.EndToEnd.MaxMs, tc.wantMax)) {
				t.Errorf("p50 %v max %v, want %v %v", p50, r.EndToEnd.MaxMs, tc.wantP50, tc.wantMax)
			}
			if tc.wantOK == 0 {
				if _, ok := r.EndToEnd.At(50); ok {
					t.Error("empty distribution reports a percentile")
				}
			}
			if r.RequestsMean != tc.wantReqMean || int64(r.RequestsP50) != tc.wantReqP50 || r.Detection.N != tc.wantDet {
				t.Errorf("requests mean %v p50 %d, detection n %d", r.RequestsMean, r.RequestsP50, r.Detection.N)
			}
		})
	}
}

// near allows HdrHistogram's bucket error (3 significant digits).
func near(got, want float64) bool { return got >= want*0.999 && got <= want*1.001 }

func TestSummarizeRejectsPercentiles(t *testing.T) {
	for _, ps := range [][]float64{{0}, {101}, {-1}, {50, 50}, {}} {
		t.Run(fmt.Sprint(ps), func(t *testing.T) {
			if _, err := Summarize(fixtureRun([]int{70}), ps); err == nil {
				t.Errorf("percentiles %v accepted", ps)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	meta, _ := json.Marshal(bench.Meta{RunID: "r1", Config: bench.Config{Strategies: []string{"poll"}}})
	line := func(seq int) string {
		b, _ := json.Marshal(bench.TrialRecord{RunID: "r1", Seq: seq, Strategy: "poll", Result: bench.ResultOK, EndToEndMs: f(5)})
		return string(b) + "\n"
	}
	tests := []struct {
		name          string
		trials        string
		noMeta        bool
		wantN         int
		wantTruncated bool
		wantErr       string
	}{
		{"complete", line(0) + line(1), false, 2, false, ""},
		{"crash mid-line", line(0) + line(1) + `{"run_id":"r1","se`, false, 2, true, ""},
		{"empty", "", false, 0, false, ""},
		{"corrupt middle line", line(0) + "{oops}\n" + line(2), false, 0, false, "line 2"},
		{"no meta", line(0), true, 0, false, "meta.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if !tc.noMeta {
				os.WriteFile(filepath.Join(dir, bench.MetaFile), meta, 0o644)
			}
			os.WriteFile(filepath.Join(dir, bench.TrialsFile), []byte(tc.trials), 0o644)
			run, err := Load(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(run.Trials) != tc.wantN || run.Truncated != tc.wantTruncated || run.Meta.RunID != "r1" {
				t.Errorf("trials %d truncated %v meta %q", len(run.Trials), run.Truncated, run.Meta.RunID)
			}
		})
	}
}

func BenchmarkSummarize10k(b *testing.B) {
	run := &Run{Meta: bench.Meta{Config: bench.Config{Strategies: []string{"poll", "sdk", "ui", "backoff"}, ImageQualities: []int{70}}}}
	for i := range 10000 {
		run.Trials = append(run.Trials, bench.TrialRecord{Seq: i, Strategy: run.Meta.Config.Strategies[i%4],
			ImageQuality: 70, Result: bench.ResultOK, EndToEndMs: f(float64(500 + i%7000)), DetectionDelayMs: f(float64(i % 500)),
			Requests: i % 9})
	}
	for b.Loop() {
		if _, err := Summarize(run, DefaultPercentiles); err != nil {
			b.Fatal(err)
		}
	}
}
