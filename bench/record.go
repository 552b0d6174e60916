package bench

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cvatbench/cvatbench/cvat"
)

// Trial results.
const (
	ResultOK      = "ok"
	ResultTimeout = "timeout"
	ResultError   = "error"
	// ResultCanceled is a trial cut short by the run's interruption (Ctrl-C): not the strategy's failure, so
	// it is neither an error nor a latency; reports count it apart.
	ResultCanceled = "canceled"
	// ResultDropped is an open-loop trial that was due while Config.MaxInFlight trials were still in flight:
	// it never started (k6's dropped_iterations). It measures that the server did not keep up with the
	// rate, not a strategy; reports count it apart.
	ResultDropped = "dropped"
)

// Phases of a trial (TrialRecord.FailedIn): creating the task and uploading its data come before the wait
// strategy runs, so their failures are not the strategy's.
const (
	PhaseCreate = "create"
	PhaseUpload = "upload"
	PhaseWait   = "wait"
)

// Sources of TrialRecord.JobsVisibleAt.
const (
	VisibleFromEmulator       = "emulator"
	VisibleFromServerFinished = "server_finished_date"
)

// TrialRecord is one line of results/<run-id>/trials.jsonl (raw record; the source of truth).
type TrialRecord struct {
	RunID        string `json:"run_id"`
	Seq          int    `json:"seq"` // scheduling order within the run, 0-based
	Strategy     string `json:"strategy"`
	ImageQuality int    `json:"image_quality"`
	Images       int    `json:"images"`
	SegmentSize  int    `json:"segment_size"`
	TaskID       int    `json:"task_id,omitempty"`
	Result       string `json:"result"` // "ok" | "timeout" | "error" | "canceled"
	ErrorClass   string `json:"error_class,omitempty"`
	FailedIn     string `json:"failed_in,omitempty"` // PhaseCreate, PhaseUpload or PhaseWait, for trials that are not ok
	Error        string `json:"error,omitempty"`
	Signal       string `json:"signal,omitempty"`
	JobIDs       []int  `json:"job_ids,omitempty"`
	// Local clock (UTC, RFC 3339 nanoseconds). Absent when the trial never got there.
	IntendedAt     *time.Time `json:"intended_at,omitempty"`
	CreateSentAt   *time.Time `json:"create_sent_at,omitempty"`
	TaskCreatedAt  *time.Time `json:"task_created_at,omitempty"`
	UploadDoneAt   *time.Time `json:"upload_done_at,omitempty"`
	JobsObtainedAt *time.Time `json:"jobs_obtained_at,omitempty"`
	// Server clock: the creation request's dates.
	RequestCreatedAt  *time.Time `json:"request_created_at,omitempty"`
	RequestStartedAt  *time.Time `json:"request_started_at,omitempty"`
	RequestFinishedAt *time.Time `json:"request_finished_at,omitempty"`
	// When jobs became visible, on the local clock: emulator ground truth, or the server's finished_date shifted
	// by the estimated clock offset.
	JobsVisibleAt     *time.Time `json:"jobs_visible_at,omitempty"`
	JobsVisibleSource string     `json:"jobs_visible_source,omitempty"` // "emulator" | "server_finished_date"
	// On a real server the jobs became visible between JobsVisibleAfter (the newest job row's created_date,
	// NewestJobCreatedAt on the server clock, mapped to local) and JobsVisibleAt (finished_date, mapped).
	NewestJobCreatedAt *time.Time `json:"newest_job_created_at,omitempty"`
	JobsVisibleAfter   *time.Time `json:"jobs_visible_after,omitempty"`
	ClockOffsetMs      *float64   `json:"clock_offset_ms,omitempty"`       // server minus local
	ClockOffsetErrorMs *float64   `json:"clock_offset_error_ms,omitempty"` // ± bound
	// Derived durations in milliseconds (float).
	EndToEndMs         *float64       `json:"end_to_end_ms,omitempty"`        // intended_at (open loop) or create_sent_at -> jobs_obtained_at
	DetectionDelayMs   *float64       `json:"detection_delay_ms,omitempty"`   // jobs_visible_at -> jobs_obtained_at
	ScheduleLagMs      *float64       `json:"schedule_lag_ms,omitempty"`      // intended_at -> create_sent_at
	ServerQueueMs      *float64       `json:"server_queue_ms,omitempty"`      // request started - created (server clock)
	ServerProcessingMs *float64       `json:"server_processing_ms,omitempty"` // request finished - started (server clock)
	Requests           int            `json:"requests"`                       // HTTP attempts while waiting (retries count)
	RequestsByEndpoint map[string]int `json:"requests_by_endpoint,omitempty"` // "GET /api/jobs 200" -> n
	// What the runner read of the compressed chunks after the wait (Config.Chunks); nil when it did not probe.
	Chunks *ChunkProbe `json:"chunks,omitempty"`
}

// Observer receives live events from the runner (e.g. Prometheus metrics). Called concurrently.
type Observer interface {
	TrialStarted(strategy string)
	APICall(strategy string, c cvat.Call) // every HTTP attempt made during a trial (create, upload, wait)
	TrialFinished(rec TrialRecord)
}

// Histogram geometry: nanoseconds, 1 µs resolution, up to MaxTimeout, 3 significant digits.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(MaxTimeout)
	histDigits  = 3
)

// NewHistogram is the only histogram constructor, so every histogram shares one geometry and Merge never drops
// values: ns, 1µs..30min, 3 significant digits.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// Histogram metrics kept per strategy.
const (
	MetricEndToEnd  = "end_to_end"
	MetricDetection = "detection"
)

// Recorder accumulates latency histograms per strategy for one worker. It is NOT safe for concurrent use
// (hdrhistogram-go has no locking): each worker owns one, and the runner merges them at the end.
type Recorder struct {
	hists    map[string]map[string]*hdrhistogram.Histogram // strategy -> metric -> histogram
	overflow map[string]int                                // "strategy/metric" -> values out of range
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{hists: map[string]map[string]*hdrhistogram.Histogram{}, overflow: map[string]int{}}
}

func (r *Recorder) hist(strategy, metric string) *hdrhistogram.Histogram {
	m := r.hists[strategy]
	if m == nil {
		m = map[string]*hdrhistogram.Histogram{}
		r.hists[strategy] = m
	}
	h := m[metric]
	if h == nil {
		h = NewHistogram()
		m[metric] = h
	}
	return h
}

// Record adds the latencies of a successful trial. Values outside the histogram range (negative detection
// delays from clock-offset error, or above 30 min) are counted as overflow instead of being lost silently.
func (r *Recorder) Record(rec TrialRecord) {
	if rec.Result != ResultOK {
		return
	}
	r.add(rec.Strategy, MetricEndToEnd, rec.EndToEndMs)
	r.add(rec.Strategy, MetricDetection, rec.DetectionDelayMs)
}

func (r *Recorder) add(strategy, metric string, v *float64) {
	if v == nil {
		return
	}
	h := r.hist(strategy, metric)
	// Round like report does when it rebuilds histograms from trials.jsonl, so
	// a value on a bucket edge lands in the same bucket in both.
	if err := h.RecordValue(int64(math.Round(*v * float64(time.Millisecond)))); err != nil {
		r.overflow[strategy+"/"+metric]++
	}
}

// Merge folds o into r. It fails if a histogram dropped values, which only happens if some histogram was not
// made by NewHistogram.
func (r *Recorder) Merge(o *Recorder) error {
	for s, m := range o.hists {
		for metric, h := range m {
			if n := r.hist(s, metric).Merge(h); n > 0 {
				return fmt.Errorf("merge %s/%s dropped %d values: histogram geometry differs", s, metric, n)
			}
		}
	}
	for k, n := range o.overflow {
		r.overflow[k] += n
	}
	return nil
}

// Histogram returns the histogram of strategy and metric, or nil if nothing was recorded.
func (r *Recorder) Histogram(strategy, metric string) *hdrhistogram.Histogram {
	return r.hists[strategy][metric]
}

// Strategies returns the strategies with recorded values, sorted.
func (r *Recorder) Strategies() []string { return slices.Sorted(maps.Keys(r.hists)) }

// Overflow returns how many values of strategy and metric fell outside the histogram range.
func (r *Recorder) Overflow(strategy, metric string) int { return r.overflow[strategy+"/"+metric] }
