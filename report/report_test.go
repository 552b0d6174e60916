package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/record"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func f(v float64) *float64 { return &v }

// fixtureRun is a small, fixed run: poll fast and steady, sdk slow with one timeout, ui all failed.
func fixtureRun(qualities []int) *Run {
	start := time.Date(2026, 11, 27, 0, 15, 0, 0, time.UTC)
	run := &Run{Meta: record.Meta{RunID: "20261127T001500Z-3f9a", StartedAt: start,
		Config:      bench.Config{Strategies: []string{"poll", "sdk", "ui"}, ImageQualities: qualities},
		ClockOffset: record.OffsetStats{MaxErrorMs: 1.5}}}
	seq := 0
	add := func(rec record.Trial) {
		rec.RunID, rec.Seq = run.Meta.RunID, seq
		seq++
		run.Trials = append(run.Trials, rec)
	}
	for _, q := range qualities {
		for i := range 10 {
			// Upload done at 200 ms, jobs visible 300..570 ms after it: the bound's samples.
			uploaded := start.Add(200 * time.Millisecond)
			visible := uploaded.Add(time.Duration(300+i*30) * time.Millisecond)
			add(record.Trial{Strategy: "poll", ImageQuality: q, Result: record.ResultOK,
				EndToEndMs: f(800 + float64(i*10+q)), DetectionDelayMs: f(100 + float64(i)),
				Requests: 2 + i%3, JobsVisibleSource: record.VisibleFromServerFinished,
				UploadDoneAt: &uploaded, JobsVisibleAt: &visible})
			add(record.Trial{Strategy: "sdk", ImageQuality: q, Result: record.ResultOK,
				EndToEndMs: f(5000 + float64(i*100)), DetectionDelayMs: f(4200 + float64(i*50)),
				Requests: 2, JobsVisibleSource: record.VisibleFromServerFinished,
				UploadDoneAt: &uploaded, JobsVisibleAt: &visible})
		}
		add(record.Trial{Strategy: "sdk", ImageQuality: q, Result: record.ResultTimeout, ErrorClass: "timeout"})
		add(record.Trial{Strategy: "ui", ImageQuality: q, Result: record.ResultError, ErrorClass: "http_5xx"})
		add(record.Trial{Strategy: "ui", ImageQuality: q, Result: record.ResultError, ErrorClass: "canceled"})
	}
	return run
}

// TestRenderGolden locks every format of Render against testdata/*.golden (go test ./report -update rewrites
// them; review the diff).
func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name        string
		qualities   []int
		percentiles []float64
		format      string
		ext         string
	}{
		{"table_ascii", []int{70}, nil, FormatTable, "golden"},
		{"table_markdown", []int{70}, nil, FormatMarkdown, "golden"},
		{"table_sweep_ascii", []int{30, 90}, []float64{50, 99.9}, FormatTable, "golden"},
		{"table_sweep_markdown", []int{30, 90}, []float64{50, 99.9}, FormatMarkdown, "golden"},
		{"table_sweep_no_p50", []int{30, 90}, []float64{90, 99}, FormatTable, "golden"},
		{"summary", []int{70}, []float64{50, 90, 99, 99.9}, FormatCSV, "csv.golden"},
		{"summary_sweep", []int{30, 90}, nil, FormatCSV, "csv.golden"},
		{"summary", []int{70}, []float64{50, 90, 99, 99.9}, FormatJSON, "json.golden"},
		{"summary_sweep", []int{30, 90}, nil, FormatJSON, "json.golden"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"."+tc.format, func(t *testing.T) {
			var buf bytes.Buffer
			if _, err := Render(&buf, fixtureRun(tc.qualities), Options{Format: tc.format, Percentiles: tc.percentiles}); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", tc.name+"."+tc.ext), buf.Bytes())
		})
	}
}

// golden compares got with the file, or rewrites the file under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestTableIsRenderTable keeps the old entry point (Summarize + Table) and Render in step: run prints through
// Render, and library users call Table.
func TestTableIsRenderTable(t *testing.T) {
	run := fixtureRun([]int{70})
	s, err := Summarize(run, DefaultPercentiles)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := Table(s, false)(&a); err != nil {
		t.Fatal(err)
	}
	if _, err := Render(&b, run, Options{}); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("Table and Render differ:\n%s\n%s", a.String(), b.String())
	}
}

func TestMarkdownEscapesPipes(t *testing.T) {
	run := fixtureRun([]int{70})
	for i := range run.Trials {
		if run.Trials[i].Strategy == "poll" {
			run.Trials[i].Strategy = "po|ll"
		}
	}
	var buf bytes.Buffer
	if _, err := Render(&buf, run, Options{Format: FormatMarkdown}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `| po\|ll `) {
		t.Errorf("pipe not escaped:\n%s", buf.String())
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, "|") && strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") != 14 {
			t.Errorf("row has a broken column count: %q", line)
		}
	}
}

func TestCSVIsRectangularWithUnits(t *testing.T) {
	var buf bytes.Buffer
	if _, err := Render(&buf, fixtureRun([]int{30, 90}), Options{Format: FormatCSV, Percentiles: []float64{50, 99.9}}); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 7 {
		t.Fatalf("%d records, want header + 6", len(recs))
	}
	for _, col := range recs[0] {
		if strings.HasPrefix(col, "p") || strings.HasPrefix(col, "detect_") || strings.HasPrefix(col, "max") {
			if !strings.HasSuffix(col, "_ms") {
				t.Errorf("time column %q lacks _ms", col)
			}
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"zero value", Options{}, ""},
		{"all formats", Options{Format: FormatJSON, Percentiles: []float64{50, 100}}, ""},
		{"unknown format", Options{Format: "md"}, `unknown format "md"`},
		{"percentile zero", Options{Percentiles: []float64{0}}, "outside (0, 100]"},
		{"percentile above 100", Options{Percentiles: []float64{100.1}}, "outside (0, 100]"},
		{"empty percentiles", Options{Percentiles: []float64{}}, "no percentiles"},
		{"both", Options{Format: "xml", Percentiles: []float64{-1}}, "xml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
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
		{s.Rows[2], 1, 0, 0, 0, "map[http_5xx:1]", 0, 0, 0}, // its canceled trial is counted apart
	}
	if s.Canceled != 1 {
		t.Errorf("canceled %d, want the fixture's 1", s.Canceled)
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
	meta, _ := json.Marshal(record.Meta{RunID: "r1", Config: bench.Config{Strategies: []string{"poll"}}})
	line := func(seq int) string {
		b, _ := json.Marshal(record.Trial{RunID: "r1", Seq: seq, Strategy: "poll", Result: record.ResultOK, EndToEndMs: f(5)})
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
				os.WriteFile(filepath.Join(dir, record.MetaFile), meta, 0o644)
			}
			os.WriteFile(filepath.Join(dir, record.TrialsFile), []byte(tc.trials), 0o644)
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
	run := &Run{Meta: record.Meta{Config: bench.Config{Strategies: []string{"poll", "sdk", "ui", "backoff"}, ImageQualities: []int{70}}}}
	for i := range 10000 {
		run.Trials = append(run.Trials, record.Trial{Seq: i, Strategy: run.Meta.Config.Strategies[i%4],
			ImageQuality: 70, Result: record.ResultOK, EndToEndMs: f(float64(500 + i%7000)), DetectionDelayMs: f(float64(i % 500)),
			Requests: i % 9})
	}
	for b.Loop() {
		if _, err := Summarize(run, DefaultPercentiles); err != nil {
			b.Fatal(err)
		}
	}
}
