package record

import (
	"encoding/json"
	"time"
)

// Files of a results directory, OutDir/<run-id>/.
const (
	MetaFile   = "meta.json"
	TrialsFile = "trials.jsonl"
	HlogExt    = ".hlog" // one <strategy>.hlog per strategy
	// DetectionTagSuffix tags the detection-delay interval in <strategy>.hlog; the end-to-end interval is
	// tagged with the bare strategy name.
	DetectionTagSuffix = ".detection"
)

// Loop modes in Meta.Loop.
const (
	LoopClosed = "closed"
	LoopOpen   = "open"
)

// OffsetMethod describes how the runner maps server dates to the local clock; meta.json repeats it so a reader
// knows what jobs_visible_at means.
const OffsetMethod = "per trial: offset = request created_date - midpoint of the upload call that returned " +
	"the 202 (created_date falls inside it); error bound = half that call's duration"

// Meta is results/<run-id>/meta.json: what was run, against what, by which tool, and when.
type Meta struct {
	RunID           string `json:"run_id"`
	ToolVersion     string `json:"tool_version"`
	ToolCommit      string `json:"tool_commit"`
	Config          Config `json:"config"`
	Target          string `json:"target"`                     // CVAT URL without credentials, or "embedded"
	EmulatorProfile string `json:"emulator_profile,omitempty"` // when Target is "embedded": a name or a file path
	// EmulatorTerms is the profile the emulator ran, as a profile file (docs/profile-file.md), so a run
	// against a profile file stays reproducible after the file changes.
	EmulatorTerms  json.RawMessage `json:"emulator_terms,omitempty"`
	ServerVersion  string          `json:"server_version,omitempty"` // GET /api/server/about
	Seed           int64           `json:"seed"`
	Loop           string          `json:"loop"` // "closed" | "open"
	TrialsPlanned  int             `json:"trials_planned"`
	TrialsRecorded int             `json:"trials_recorded"`
	StartedAt      time.Time       `json:"started_at"`
	FinishedAt     *time.Time      `json:"finished_at,omitempty"` // absent while running or after a crash
	ClockOffset    OffsetStats     `json:"clock_offset"`
	Interrupted    bool            `json:"interrupted,omitempty"`
	// Abandoned: a second interrupt ended the process before cleanup; what the run created may remain.
	Abandoned     bool     `json:"abandoned,omitempty"`
	DurationUp    bool     `json:"duration_up,omitempty"` // Config.Duration ended the run before its planned trials
	CleanupErrors []string `json:"cleanup_errors,omitempty"`
	// FaultsInjected counts the embedded emulator's injected faults by key (--sim-faults) over the run, the
	// run's own login excluded.
	FaultsInjected map[string]int `json:"faults_injected,omitempty"`
	HistogramFiles []string       `json:"histogram_files,omitempty"`
}

// OffsetStats summarises the clock-offset estimates of a run.
type OffsetStats struct {
	Method        string  `json:"method"`
	GroundTruth   bool    `json:"ground_truth"` // jobs_visible_at came from the emulator, not from the estimate
	Estimates     int     `json:"estimates"`
	MaxErrorMs    float64 `json:"max_error_ms"`    // largest ± bound of any trial
	MedianErrorMs float64 `json:"median_error_ms"` // typical ± bound
	// With the ping method: the one offset every trial uses, its ± bound, and the pings it came from.
	RunOffsetMs *float64 `json:"run_offset_ms,omitempty"`
	RunBoundMs  *float64 `json:"run_bound_ms,omitempty"`
	Pings       int      `json:"pings,omitempty"`
	PingError   string   `json:"ping_error,omitempty"` // why the ping method was not used, when it was asked for
}
