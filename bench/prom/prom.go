// Package prom exports cvatbench measurements to Prometheus.
//
// Two registries, two lifetimes:
//
//   - Live: Metrics implements bench.Observer and updates counters, gauges and histograms while a run is in
//     progress, on a registerer the caller supplies (never the global one). Serve exposes it for scraping.
//   - End of run: Run is built once from the raw []record.Trial of a finished run and exposes exact HDR
//     quantiles as a const summary plus run gauges. It is pushed to a Pushgateway (Push) with target and
//     strategy in the grouping key, or written as a node_exporter textfile (WriteTextfile).
//
// Labels are bounded: strategy, result, endpoint (templated by the client), code, and target (a grouping key
// or const label, never a per-observation label). Task ids, run ids, URLs and error text stay in results/.
package prom

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
)

// Namespace prefixes every metric name.
const Namespace = "cvatbench"

// Metric names, exported so tests, the dashboard check and docs name the same families.
const (
	NameTimeToJobs          = "cvatbench_time_to_jobs_seconds"
	NameTasks               = "cvatbench_tasks_total"
	NameTasksInFlight       = "cvatbench_tasks_in_flight"
	NameAPIRequests         = "cvatbench_api_requests_total"
	NameRequestsPerTask     = "cvatbench_requests_per_task"
	NameDetectionOvershoot  = "cvatbench_detection_overshoot_seconds"
	NameScheduleLag         = "cvatbench_schedule_lag_seconds"
	NameServerQueue         = "cvatbench_server_queue_seconds"
	NameServerProcessing    = "cvatbench_server_processing_seconds"
	NameBuildInfo           = "cvatbench_build_info"
	NameRunTimeToJobs       = "cvatbench_run_time_to_jobs_seconds"
	NameRunDuration         = "cvatbench_run_duration_seconds"
	NameRunLastCompletion   = "cvatbench_run_last_completion_timestamp_seconds"
	NameRunLastSuccess      = "cvatbench_run_last_success_timestamp_seconds"
	NameRunThresholdFailure = "cvatbench_run_threshold_failures"
)

// Bucket layouts. They are part of the exported interface: histogram_quantile over a range that spans two
// layouts is meaningless, so change them only deliberately (and say so in the release notes).
var (
	// TimeToJobsBuckets: 0.25, 0.51, 1.03, 2.09, 4.24, 8.6, 17.4, 35.4, 71.8, 146, 296, 600 s.
	TimeToJobsBuckets = prometheus.ExponentialBucketsRange(0.25, 600, 12)
	// RequestsPerTaskBuckets counts HTTP attempts while waiting (Fibonacci: fine at the low end where
	// push-like strategies live, coarse where polling loops do).
	RequestsPerTaskBuckets = []float64{1, 2, 3, 5, 8, 13, 21, 34, 55}
	// OvershootBuckets: jobs visible -> strategy notices; 5 ms .. 2 min (poll periods are 0.1–10 s).
	OvershootBuckets = prometheus.ExponentialBucketsRange(0.005, 120, 12)
	// ScheduleLagBuckets: open-loop start lateness, 1 ms .. 1 min.
	ScheduleLagBuckets = prometheus.ExponentialBucketsRange(0.001, 60, 12)
	// ServerBuckets: server-side queue and processing time, 10 ms .. 10 min.
	ServerBuckets = prometheus.ExponentialBucketsRange(0.01, 600, 14)
)

// Native histogram settings of cvatbench_time_to_jobs_seconds (LIBRARIES.md): ~10 % resolution, bounded size.
const (
	nativeFactor        = 1.1
	nativeMaxBuckets    = 160
	nativeMinResetAfter = time.Hour
)

// Results are the values of the result label, pre-created per strategy so that rate() sees the first error.
var Results = []string{record.ResultOK, record.ResultTimeout, record.ResultError}

// BuildInfo is what cvatbench_build_info reports.
type BuildInfo struct {
	Version   string
	Commit    string
	GoVersion string
}

// newBuildInfo returns the cvatbench_build_info gauge (always 1) for b, with optional const labels.
func newBuildInfo(b BuildInfo, constLabels prometheus.Labels) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        NameBuildInfo,
		Help:        "cvatbench build metadata; always 1.",
		ConstLabels: mergeLabels(constLabels, prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": b.GoVersion}),
	})
	g.Set(1)
	return g
}

func mergeLabels(a, b prometheus.Labels) prometheus.Labels {
	out := prometheus.Labels{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// Metrics holds the live metrics of a run. It implements bench.Observer and is safe for concurrent use (every
// client_golang metric is).
type Metrics struct {
	timeToJobs       *prometheus.HistogramVec
	tasks            *prometheus.CounterVec
	inFlight         *prometheus.GaugeVec
	apiRequests      *prometheus.CounterVec
	requestsPerTask  *prometheus.HistogramVec
	overshoot        *prometheus.HistogramVec
	scheduleLag      prometheus.Histogram
	serverQueue      *prometheus.HistogramVec
	serverProcessing *prometheus.HistogramVec

	mu   sync.Mutex
	seen map[string]bool // strategies whose series were pre-created
}

// New registers the live metrics and cvatbench_build_info on reg. The series of the given strategies are
// created at zero right away, so that the first scrape already sees them and rate() counts the first trial
// (a series that appears with its final value has no increase); strategies seen later are created on their
// first TrialStarted.
func New(reg prometheus.Registerer, build BuildInfo, strategies ...string) (*Metrics, error) {
	m := &Metrics{
		timeToJobs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            NameTimeToJobs,
			Help:                            "Time from the create request (or its intended start, open loop) until the job IDs are known.",
			Buckets:                         TimeToJobsBuckets,
			NativeHistogramBucketFactor:     nativeFactor,
			NativeHistogramMaxBucketNumber:  nativeMaxBuckets,
			NativeHistogramMinResetDuration: nativeMinResetAfter,
		}, []string{"strategy", "result"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameTasks,
			Help: "Finished trials (one task each) by result.",
		}, []string{"strategy", "result"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameTasksInFlight,
			Help: "Trials started and not yet finished.",
		}, []string{"strategy"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameAPIRequests,
			Help: "HTTP attempts to the CVAT API during trials (retries count); code 0 means no response arrived.",
		}, []string{"strategy", "endpoint", "code"}),
		requestsPerTask: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameRequestsPerTask,
			Help:    "HTTP attempts a strategy made while waiting for the jobs of one task.",
			Buckets: RequestsPerTaskBuckets,
		}, []string{"strategy"}),
		overshoot: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameDetectionOvershoot,
			Help:    "Time from the jobs becoming visible on the server until the strategy knew their IDs.",
			Buckets: OvershootBuckets,
		}, []string{"strategy"}),
		scheduleLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    NameScheduleLag,
			Help:    "Open loop: actual minus intended create time; large values flag coordinated omission.",
			Buckets: ScheduleLagBuckets,
		}),
		serverQueue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameServerQueue,
			Help:    "Server clock: creation request started_date minus created_date.",
			Buckets: ServerBuckets,
		}, []string{"strategy"}),
		serverProcessing: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameServerProcessing,
			Help:    "Server clock: creation request finished_date minus started_date.",
			Buckets: ServerBuckets,
		}, []string{"strategy"}),
		seen: map[string]bool{},
	}
	for _, c := range []prometheus.Collector{
		m.timeToJobs, m.tasks, m.inFlight, m.apiRequests, m.requestsPerTask, m.overshoot, m.scheduleLag,
		m.serverQueue, m.serverProcessing, newBuildInfo(build, nil),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, s := range strategies {
		m.init(s)
	}
	return m, nil
}

// init creates the series of strategy at zero, once.
func (m *Metrics) init(strategy string) {
	m.mu.Lock()
	done := m.seen[strategy]
	m.seen[strategy] = true
	m.mu.Unlock()
	if done {
		return
	}
	for _, r := range Results {
		m.tasks.WithLabelValues(strategy, r)
	}
	m.timeToJobs.WithLabelValues(strategy, record.ResultOK)
	m.inFlight.WithLabelValues(strategy)
	m.requestsPerTask.WithLabelValues(strategy)
	m.overshoot.WithLabelValues(strategy)
	m.serverQueue.WithLabelValues(strategy)
	m.serverProcessing.WithLabelValues(strategy)
}

// TrialStarted counts a trial in flight.
func (m *Metrics) TrialStarted(strategy string) {
	m.init(strategy)
	m.inFlight.WithLabelValues(strategy).Inc()
}

// APICall counts one HTTP attempt. The endpoint is the client's template ("/api/tasks/{id}"), so the label
// stays bounded.
func (m *Metrics) APICall(strategy string, c cvat.Call) {
	ep := c.Endpoint
	if ep == "" {
		ep = "unknown"
	}
	m.apiRequests.WithLabelValues(strategy, ep, strconv.Itoa(c.Status)).Inc()
}

// TrialFinished records a finished trial. Durations the record does not have (a failed trial has no
// end-to-end time; the schedule lag exists only in open loop) are not observed, and neither are negative
// ones: a negative detection delay is clock-offset error, kept in results/ but meaningless in a histogram
// (it would make _sum decrease). requests_per_task counts trials that reached the wait phase.
func (m *Metrics) TrialFinished(rec record.Trial) {
	s := rec.Strategy
	m.init(s)
	m.inFlight.WithLabelValues(s).Dec()
	m.tasks.WithLabelValues(s, rec.Result).Inc()
	if v, ok := seconds(rec.EndToEndMs); ok {
		m.timeToJobs.WithLabelValues(s, rec.Result).Observe(v)
	}
	if rec.UploadDoneAt != nil {
		m.requestsPerTask.WithLabelValues(s).Observe(rec.WaitRequests())
	}
	if v, ok := seconds(rec.DetectionDelayMs); ok {
		m.overshoot.WithLabelValues(s).Observe(v)
	}
	if v, ok := seconds(rec.ScheduleLagMs); ok {
		m.scheduleLag.Observe(v)
	}
	if v, ok := seconds(rec.ServerQueueMs); ok {
		m.serverQueue.WithLabelValues(s).Observe(v)
	}
	if v, ok := seconds(rec.ServerProcessingMs); ok {
		m.serverProcessing.WithLabelValues(s).Observe(v)
	}
}

// seconds converts a record's millisecond duration; ok is false when it is absent or negative.
func seconds(ms *float64) (float64, bool) {
	if ms == nil || *ms < 0 {
		return 0, false
	}
	return *ms / 1e3, true
}
