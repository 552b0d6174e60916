// Package record is the results format of a cvatbench run: one Trial per line of trials.jsonl, the run's Meta
// in meta.json (with the Config that defined it), one <strategy>.hlog of HdrHistograms per strategy, the
// Writer that writes them as the run goes, and the figures derived from a trial's timestamps. Readers of
// results (report, the Prometheus exporter) need this package only, never the engine that produced them.
package record

import "time"

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

// Phases of a trial (Trial.FailedIn): creating the task and uploading its data come before the wait
// strategy runs, so their failures are not the strategy's.
const (
	PhaseCreate = "create"
	PhaseUpload = "upload"
	PhaseWait   = "wait"
)

// Sources of Trial.JobsVisibleAt.
const (
	VisibleFromEmulator       = "emulator"
	VisibleFromServerFinished = "server_finished_date"
)

// Trial is one line of results/<run-id>/trials.jsonl (raw record; the source of truth).
type Trial struct {
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
	// Batch runs (Config.Batch): the trial's batch, by id (its first trial's seq + 1, unique in the run and
	// across its shards), and its size.
	Batch     int `json:"batch,omitempty"`
	BatchSize int `json:"batch_size,omitempty"`
	// BatchMakespanMs is the batch's first create_sent_at to its last jobs_obtained_at, on every trial of the
	// batch (the batch's ok trials; absent when none was).
	BatchMakespanMs *float64 `json:"batch_makespan_ms,omitempty"`
	// RequestsShare is, for a project-level strategy, the batch's waiting requests over the tasks that waited:
	// the requests per task of calls that covered them all. Requests is 0 then: no call was the task's own.
	RequestsShare *float64 `json:"requests_share,omitempty"`
	// What the runner read of the compressed chunks after the wait (Config.Chunks); nil when it did not probe.
	Chunks *ChunkProbe `json:"chunks,omitempty"`
}

// ChunkProbe is what the runner read of a trial's compressed chunks after the strategy had returned the job
// IDs (Trial.Chunks). Its requests are not the strategy's: they are not in Trial.Requests, and
// they happen after jobs_obtained_at, so no latency of the trial includes them.
//
// Cold is the first read of chunk 0 of the probed job: on a default server (on-the-fly cache, API.md §7.2)
// that read builds the chunk. The probed job is the second one when the task has several, because CVAT builds
// the first job's chunk 0 during creation for the task preview (cvat/apps/engine/cache.py
// _prepare_segment_preview reads frame 0 of it), so its first read is already warm: measured on CVAT 2.73.0,
// 48 ms against 46 ms for the read after it. With one job the probe reads that chunk and says so
// (PreviewBuilt). Warm is the read that follows at once, from the cache. Both run from sending the first GET
// to reading the last byte of the 200 answer, on the runner's clock, retries and waits included; Attempts
// counts every HTTP attempt of the probe (a jobs listing of its own included, when the trial made none).
//
// Fidelity is scored per frame, in the order read (job, chunk, member): MSE, PSNR and SSIM of the frame's
// luma against the uploaded original's (bench/fidelity). PSNR is null where the frame is identical to its
// original (infinite). A probe that fails says why in Error and keeps what it measured before; the trial's
// result does not change.
type ChunkProbe struct {
	Mode         string     `json:"mode"`                         // ChunksFirst or ChunksAll
	JobID        int        `json:"job_id,omitempty"`             // the probed job: the second by id, or the only one
	PreviewBuilt bool       `json:"preview_built,omitempty"`      // the cold read was of the first job's chunk 0, which the task preview built
	ChunkSize    int        `json:"chunk_size,omitempty"`         // the job's data_chunk_size
	ChunksRead   int        `json:"chunks_read"`                  // chunks read cold
	Frames       int        `json:"frames"`                       // frames the chunks held
	Bytes        int64      `json:"bytes"`                        // bytes of the chunks read cold
	FirstBytes   int        `json:"first_chunk_bytes,omitempty"`  // bytes of the chunk read cold and warm
	FirstFrames  int        `json:"first_chunk_frames,omitempty"` // frames of that chunk
	ColdMs       *float64   `json:"cold_ms,omitempty"`
	WarmMs       *float64   `json:"warm_ms,omitempty"`
	Attempts     int        `json:"attempts"`
	MSE          []float64  `json:"mse,omitempty"`
	PSNRdB       []*float64 `json:"psnr_db,omitempty"`
	SSIM         []float64  `json:"ssim,omitempty"`
	Error        string     `json:"error,omitempty"`
}

// BytesPerFrame is Bytes over Frames, 0 when no frame was read.
func (p *ChunkProbe) BytesPerFrame() float64 {
	if p == nil || p.Frames == 0 {
		return 0
	}
	return float64(p.Bytes) / float64(p.Frames)
}

// Chunk probe modes (Config.Chunks): what the runner reads of a trial's compressed chunks once its jobs are
// known, outside the strategy's wait (chunkprobe.go).
const (
	ChunksNone  = "none"  // nothing
	ChunksFirst = "first" // chunk 0 of the first job, cold then warm
	ChunksAll   = "all"   // every chunk of every job once, and chunk 0 of the first job warm
)

// ChunkModes lists the accepted values of Config.Chunks besides "".
var ChunkModes = []string{ChunksFirst, ChunksAll, ChunksNone}

// WaitRequests is the trial's waiting requests per task: RequestsShare for a project-level strategy, whose
// calls covered its whole batch, Requests otherwise.
func (t Trial) WaitRequests() float64 {
	if t.RequestsShare != nil {
		return *t.RequestsShare
	}
	return float64(t.Requests)
}
