package prom_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/prom"
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
)

var testBuild = prom.BuildInfo{Version: "v1.2.3", Commit: "abc123", GoVersion: "go1.26.8"}

func ptr(v float64) *float64 { return &v }

func at(s int) *time.Time {
	t := time.Date(2026, 1, 2, 3, 4, s, 0, time.UTC)
	return &t
}

// histText renders the expected exposition of one classic histogram series.
func histText(name, labels string, buckets []float64, observations []float64) string {
	var b strings.Builder
	sep := ""
	if labels != "" {
		sep = ","
	}
	sum := 0.0
	for _, o := range observations {
		sum += o
	}
	for _, le := range buckets {
		n := 0
		for _, o := range observations {
			if o <= le {
				n++
			}
		}
		fmt.Fprintf(&b, "%s_bucket{%s%sle=\"%v\"} %d\n", name, labels, sep, le, n)
	}
	fmt.Fprintf(&b, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, len(observations))
	if labels != "" {
		labels = "{" + labels + "}"
	}
	fmt.Fprintf(&b, "%s_sum%s %v\n%s_count%s %d\n", name, labels, sum, name, labels, len(observations))
	return b.String()
}

func header(name, typ, help string) string {
	return fmt.Sprintf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// drive feeds the observer the events of a small run: poll with one ok trial and one timeout, sdk with one ok
// trial and one that failed before the wait, webhook still in flight.
func drive(o bench.Observer) {
	for _, s := range []string{"poll", "poll", "sdk", "sdk", "webhook"} {
		o.TrialStarted(s)
	}
	o.APICall("poll", cvat.Call{Method: "POST", Endpoint: "/api/tasks", Status: 201})
	o.APICall("poll", cvat.Call{Method: "GET", Endpoint: "/api/requests/{rq_id}", Status: 200})
	o.APICall("poll", cvat.Call{Method: "GET", Endpoint: "/api/requests/{rq_id}", Status: 200})
	o.APICall("sdk", cvat.Call{Method: "GET", Endpoint: "/api/jobs", Status: 503})
	o.APICall("sdk", cvat.Call{Method: "GET", Endpoint: "/api/jobs", Status: 0, Err: fmt.Errorf("connection reset")})
	o.TrialFinished(record.Trial{
		Strategy: "poll", Result: record.ResultOK, UploadDoneAt: at(1), Requests: 4,
		EndToEndMs: ptr(1500), DetectionDelayMs: ptr(120), ServerQueueMs: ptr(30), ServerProcessingMs: ptr(900),
	})
	o.TrialFinished(record.Trial{
		Strategy: "poll", Result: record.ResultTimeout, ErrorClass: "timeout", UploadDoneAt: at(2), Requests: 40,
	})
	o.TrialFinished(record.Trial{
		Strategy: "sdk", Result: record.ResultOK, UploadDoneAt: at(3), Requests: 1,
		EndToEndMs: ptr(700), DetectionDelayMs: ptr(-3), ScheduleLagMs: ptr(12), // negative: clock-offset error, skipped
	})
	o.TrialFinished(record.Trial{Strategy: "sdk", Result: record.ResultError, ErrorClass: "http_5xx"}) // before the wait
}

func TestMetricsObserver(t *testing.T) {
	tests := []struct {
		name   string
		family string
		want   string
	}{
		{
			name:   "tasks by result, pre-created at zero",
			family: prom.NameTasks,
			want: header(prom.NameTasks, "counter", "Finished trials (one task each) by result.") + `
cvatbench_tasks_total{result="error",strategy="poll"} 0
cvatbench_tasks_total{result="error",strategy="sdk"} 1
cvatbench_tasks_total{result="error",strategy="webhook"} 0
cvatbench_tasks_total{result="ok",strategy="poll"} 1
cvatbench_tasks_total{result="ok",strategy="sdk"} 1
cvatbench_tasks_total{result="ok",strategy="webhook"} 0
cvatbench_tasks_total{result="timeout",strategy="poll"} 1
cvatbench_tasks_total{result="timeout",strategy="sdk"} 0
cvatbench_tasks_total{result="timeout",strategy="webhook"} 0
cvatbench_tasks_total{result="ok",strategy="idle"} 0
cvatbench_tasks_total{result="error",strategy="idle"} 0
cvatbench_tasks_total{result="timeout",strategy="idle"} 0
`,
		},
		{
			name:   "in flight",
			family: prom.NameTasksInFlight,
			want: header(prom.NameTasksInFlight, "gauge", "Trials started and not yet finished.") + `
cvatbench_tasks_in_flight{strategy="idle"} 0
cvatbench_tasks_in_flight{strategy="poll"} 0
cvatbench_tasks_in_flight{strategy="sdk"} 0
cvatbench_tasks_in_flight{strategy="webhook"} 1
`,
		},
		{
			name:   "api requests by templated endpoint and code",
			family: prom.NameAPIRequests,
			want: header(prom.NameAPIRequests, "counter", "HTTP attempts to the CVAT API during trials (retries count); code 0 means no response arrived.") + `
cvatbench_api_requests_total{code="201",endpoint="/api/tasks",strategy="poll"} 1
cvatbench_api_requests_total{code="200",endpoint="/api/requests/{rq_id}",strategy="poll"} 2
cvatbench_api_requests_total{code="503",endpoint="/api/jobs",strategy="sdk"} 1
cvatbench_api_requests_total{code="0",endpoint="/api/jobs",strategy="sdk"} 1
`,
		},
		{
			name:   "requests per task: trials that reached the wait",
			family: prom.NameRequestsPerTask,
			want: header(prom.NameRequestsPerTask, "histogram", "HTTP attempts a strategy made while waiting for the jobs of one task.") + `
cvatbench_requests_per_task_bucket{strategy="poll",le="1"} 0
cvatbench_requests_per_task_bucket{strategy="poll",le="2"} 0
cvatbench_requests_per_task_bucket{strategy="poll",le="3"} 0
cvatbench_requests_per_task_bucket{strategy="poll",le="5"} 1
cvatbench_requests_per_task_bucket{strategy="poll",le="8"} 1
cvatbench_requests_per_task_bucket{strategy="poll",le="13"} 1
cvatbench_requests_per_task_bucket{strategy="poll",le="21"} 1
cvatbench_requests_per_task_bucket{strategy="poll",le="34"} 1
cvatbench_requests_per_task_bucket{strategy="poll",le="55"} 2
cvatbench_requests_per_task_bucket{strategy="poll",le="+Inf"} 2
cvatbench_requests_per_task_sum{strategy="poll"} 44
cvatbench_requests_per_task_count{strategy="poll"} 2
` + histText(prom.NameRequestsPerTask, `strategy="sdk"`, prom.RequestsPerTaskBuckets, []float64{1}) +
				histText(prom.NameRequestsPerTask, `strategy="idle"`, prom.RequestsPerTaskBuckets, nil) +
				histText(prom.NameRequestsPerTask, `strategy="webhook"`, prom.RequestsPerTaskBuckets, nil),
		},
		{
			name:   "time to jobs: ok trials only, classic buckets",
			family: prom.NameTimeToJobs,
			want: header(prom.NameTimeToJobs, "histogram", "Time from the create request (or its intended start, open loop) until the job IDs are known.") +
				histText(prom.NameTimeToJobs, `result="ok",strategy="poll"`, prom.TimeToJobsBuckets, []float64{1.5}) +
				histText(prom.NameTimeToJobs, `result="ok",strategy="sdk"`, prom.TimeToJobsBuckets, []float64{0.7}) +
				histText(prom.NameTimeToJobs, `result="ok",strategy="idle"`, prom.TimeToJobsBuckets, nil) +
				histText(prom.NameTimeToJobs, `result="ok",strategy="webhook"`, prom.TimeToJobsBuckets, nil),
		},
		{
			name:   "detection overshoot skips negative delays",
			family: prom.NameDetectionOvershoot,
			want: header(prom.NameDetectionOvershoot, "histogram", "Time from the jobs becoming visible on the server until the strategy knew their IDs.") +
				histText(prom.NameDetectionOvershoot, `strategy="poll"`, prom.OvershootBuckets, []float64{0.12}) +
				histText(prom.NameDetectionOvershoot, `strategy="sdk"`, prom.OvershootBuckets, nil) + // -3 ms skipped
				histText(prom.NameDetectionOvershoot, `strategy="idle"`, prom.OvershootBuckets, nil) +
				histText(prom.NameDetectionOvershoot, `strategy="webhook"`, prom.OvershootBuckets, nil),
		},
		{
			name:   "schedule lag has no labels",
			family: prom.NameScheduleLag,
			want: header(prom.NameScheduleLag, "histogram", "Open loop: actual minus intended create time; large values flag coordinated omission.") +
				histText(prom.NameScheduleLag, "", prom.ScheduleLagBuckets, []float64{0.012}),
		},
		{
			name:   "server processing",
			family: prom.NameServerProcessing,
			want: header(prom.NameServerProcessing, "histogram", "Server clock: creation request finished_date minus started_date.") +
				histText(prom.NameServerProcessing, `strategy="poll"`, prom.ServerBuckets, []float64{0.9}) +
				histText(prom.NameServerProcessing, `strategy="sdk"`, prom.ServerBuckets, nil) +
				histText(prom.NameServerProcessing, `strategy="idle"`, prom.ServerBuckets, nil) +
				histText(prom.NameServerProcessing, `strategy="webhook"`, prom.ServerBuckets, nil),
		},
		{
			name:   "build info",
			family: prom.NameBuildInfo,
			want: header(prom.NameBuildInfo, "gauge", "cvatbench build metadata; always 1.") +
				`cvatbench_build_info{commit="abc123",goversion="go1.26.8",version="v1.2.3"} 1` + "\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			m, err := prom.New(reg, testBuild, "idle")
			if err != nil {
				t.Fatal(err)
			}
			drive(m)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tc.want), tc.family); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestCompareFiltersAreFamilyNames guards the trap LIBRARIES.md warns about: a sample name as filter compares
// nothing and passes, so every filter used above must be a gathered family.
func TestCompareFiltersAreFamilyNames(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := prom.New(reg, testBuild)
	if err != nil {
		t.Fatal(err)
	}
	drive(m)
	families := []string{prom.NameTimeToJobs, prom.NameTasks, prom.NameTasksInFlight, prom.NameAPIRequests,
		prom.NameRequestsPerTask, prom.NameDetectionOvershoot, prom.NameScheduleLag, prom.NameServerQueue,
		prom.NameServerProcessing, prom.NameBuildInfo}
	for _, f := range families {
		if n, err := testutil.GatherAndCount(reg, f); err != nil || n == 0 {
			t.Errorf("family %s: %d series, err %v", f, n, err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != len(families) {
		t.Errorf("gathered %d families, the test knows %d", len(mfs), len(families))
	}
}

func TestMetricsRegisterTwiceFails(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if _, err := prom.New(reg, testBuild); err != nil {
		t.Fatal(err)
	}
	if _, err := prom.New(reg, testBuild); err == nil {
		t.Error("second New on the same registry: want a duplicate-registration error")
	}
}

func TestLint(t *testing.T) {
	recs := sampleRecords()
	tests := []struct {
		name string
		reg  func(t *testing.T) prometheus.Gatherer
	}{
		{"live", func(t *testing.T) prometheus.Gatherer {
			reg := prometheus.NewPedanticRegistry()
			m, err := prom.New(reg, testBuild, "poll")
			if err != nil {
				t.Fatal(err)
			}
			drive(m)
			return reg
		}},
		{"pushed group", func(t *testing.T) prometheus.Gatherer {
			reg, err := prom.NewRun(recs, prom.RunInfo{Success: true, CompletedAt: time.Unix(1, 0)}, testBuild).Registry("poll")
			if err != nil {
				t.Fatal(err)
			}
			return reg
		}},
		{"labelled run", func(t *testing.T) prometheus.Gatherer {
			reg := prometheus.NewPedanticRegistry()
			if err := prom.NewRun(recs, prom.RunInfo{}, testBuild).RegisterLabelled(reg, prometheus.Labels{"target": "x"}); err != nil {
				t.Fatal(err)
			}
			return reg
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			probs, err := testutil.GatherAndLint(tc.reg(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range probs {
				t.Errorf("lint: %s: %s", p.Metric, p.Text)
			}
		})
	}
}

// sampleRecords: poll with ok trials of 1..1000 ms (plus a timeout), sdk with only failures.
func sampleRecords() []record.Trial {
	var recs []record.Trial
	for i := 1; i <= 1000; i++ {
		recs = append(recs, record.Trial{Strategy: "poll", Result: record.ResultOK, EndToEndMs: ptr(float64(i))})
	}
	recs = append(recs,
		record.Trial{Strategy: "poll", Result: record.ResultTimeout},
		record.Trial{Strategy: "sdk", Result: record.ResultError},
	)
	return recs
}

func TestRunSummaryQuantilesAreHDR(t *testing.T) {
	run := prom.NewRun(sampleRecords(), prom.RunInfo{}, testBuild)
	c, err := run.Collector("poll", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Independent reference: the same samples in a fresh HDR histogram, asked in percent.
	h := record.NewHistogram()
	sum := 0.0
	for i := 1; i <= 1000; i++ {
		if err := h.RecordValue(int64(i) * int64(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		sum += float64(i) / 1e3
	}
	truth := map[float64]float64{0.5: 0.5, 0.9: 0.9, 0.99: 0.99, 0.999: 0.999} // seconds, exact for 1..1000 ms
	want := header(prom.NameRunTimeToJobs, "summary", "Exact HDR quantiles of the time to job IDs of the run's ok trials.")
	for _, q := range prom.Quantiles {
		v := float64(h.ValueAtQuantile(q*100)) / 1e9
		if math.Abs(v-truth[q]) > truth[q]*1e-3 { // 3 significant digits; catches percent/fraction mix-ups
			t.Errorf("HDR q%v = %v, want %v within 0.1%%", q, v, truth[q])
		}
		want += fmt.Sprintf("%s{quantile=\"%v\"} %v\n", prom.NameRunTimeToJobs, q, v)
	}
	want += fmt.Sprintf("%s_sum %v\n%s_count 1000\n", prom.NameRunTimeToJobs, sum, prom.NameRunTimeToJobs)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), prom.NameRunTimeToJobs); err != nil {
		t.Error(err)
	}
	if probs, err := testutil.CollectAndLint(c); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
}

func TestRunGroups(t *testing.T) {
	completed := time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	recs := sampleRecords()
	tests := []struct {
		name     string
		info     prom.RunInfo
		strategy string
		want     string
	}{
		{
			name: "success carries the last-success gauge", strategy: "poll",
			info: prom.RunInfo{Duration: 90 * time.Second, CompletedAt: completed, Success: true},
			want: `
# HELP cvatbench_run_duration_seconds Wall-clock duration of the whole run.
# TYPE cvatbench_run_duration_seconds gauge
cvatbench_run_duration_seconds 90
# HELP cvatbench_run_last_completion_timestamp_seconds When the run ended, successful or not.
# TYPE cvatbench_run_last_completion_timestamp_seconds gauge
cvatbench_run_last_completion_timestamp_seconds 1.7673230455e+09
# HELP cvatbench_run_last_success_timestamp_seconds When the run last ended successfully; absent from a failed run's push, so the previous value stays.
# TYPE cvatbench_run_last_success_timestamp_seconds gauge
cvatbench_run_last_success_timestamp_seconds 1.7673230455e+09
# HELP cvatbench_run_threshold_failures Thresholds the run violated.
# TYPE cvatbench_run_threshold_failures gauge
cvatbench_run_threshold_failures 0
# HELP cvatbench_build_info cvatbench build metadata; always 1.
# TYPE cvatbench_build_info gauge
cvatbench_build_info{commit="abc123",goversion="go1.26.8",version="v1.2.3"} 1
`,
		},
		{
			name: "failure leaves last success out", strategy: "sdk",
			info: prom.RunInfo{Duration: 1500 * time.Millisecond, CompletedAt: completed, ThresholdFailures: 2},
			want: `
# HELP cvatbench_run_duration_seconds Wall-clock duration of the whole run.
# TYPE cvatbench_run_duration_seconds gauge
cvatbench_run_duration_seconds 1.5
# HELP cvatbench_run_last_completion_timestamp_seconds When the run ended, successful or not.
# TYPE cvatbench_run_last_completion_timestamp_seconds gauge
cvatbench_run_last_completion_timestamp_seconds 1.7673230455e+09
# HELP cvatbench_run_threshold_failures Thresholds the run violated.
# TYPE cvatbench_run_threshold_failures gauge
cvatbench_run_threshold_failures 2
# HELP cvatbench_run_time_to_jobs_seconds Exact HDR quantiles of the time to job IDs of the run's ok trials.
# TYPE cvatbench_run_time_to_jobs_seconds summary
cvatbench_run_time_to_jobs_seconds{quantile="0.5"} NaN
cvatbench_run_time_to_jobs_seconds{quantile="0.9"} NaN
cvatbench_run_time_to_jobs_seconds{quantile="0.99"} NaN
cvatbench_run_time_to_jobs_seconds{quantile="0.999"} NaN
cvatbench_run_time_to_jobs_seconds_sum 0
cvatbench_run_time_to_jobs_seconds_count 0
# HELP cvatbench_build_info cvatbench build metadata; always 1.
# TYPE cvatbench_build_info gauge
cvatbench_build_info{commit="abc123",goversion="go1.26.8",version="v1.2.3"} 1
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg, err := prom.NewRun(recs, tc.info, testBuild).Registry(tc.strategy)
			if err != nil {
				t.Fatal(err)
			}
			names := []string{prom.NameRunDuration, prom.NameRunLastCompletion, prom.NameRunLastSuccess,
				prom.NameRunThresholdFailure, prom.NameBuildInfo}
			if tc.strategy == "sdk" {
				names = append(names, prom.NameRunTimeToJobs)
			}
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tc.want), names...); err != nil {
				t.Error(err)
			}
			// A pushed group must not carry its grouping labels.
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					for _, lp := range m.GetLabel() {
						if lp.GetName() == "strategy" || lp.GetName() == "target" || lp.GetName() == "job" {
							t.Errorf("%s has grouping label %s", mf.GetName(), lp.GetName())
						}
					}
				}
			}
		})
	}
}

func TestRunUnknownStrategy(t *testing.T) {
	if _, err := prom.NewRun(sampleRecords(), prom.RunInfo{}, testBuild).Registry("busyloop"); err == nil {
		t.Error("want an error for a strategy without trials")
	}
}

func TestRunOverflowCounted(t *testing.T) {
	recs := []record.Trial{
		{Strategy: "poll", Result: record.ResultOK, EndToEndMs: ptr(float64(2 * time.Hour / time.Millisecond))},
		{Strategy: "poll", Result: record.ResultOK, EndToEndMs: ptr(10)},
	}
	run := prom.NewRun(recs, prom.RunInfo{}, testBuild)
	if got := run.Overflow("poll"); got != 1 {
		t.Errorf("overflow = %d, want 1", got)
	}
	c, err := run.Collector("poll", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, prom.NameRunTimeToJobs); n != 1 {
		t.Errorf("summary series = %d, want 1", n)
	}
}

// Metrics is the runner's observer; the assertion lives here so that the package itself reads results without
// importing the engine.
var _ bench.Observer = (*prom.Metrics)(nil)
