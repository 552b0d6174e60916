package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
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

// resultsWriter writes one results directory. Append is safe for concurrent use.
type resultsWriter struct {
	dir string
	mu  sync.Mutex
	f   *os.File
	bw  *bufio.Writer
	n   int // records written

	metaMu sync.Mutex // one meta.json writer at a time
	final  bool       // Abandon wrote the last meta.json
}

func createResults(outDir, runID string) (*resultsWriter, error) {
	dir := filepath.Join(outDir, runID)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("create results dir: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create results dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, TrialsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create trials file: %w", err)
	}
	return &resultsWriter{dir: dir, f: f, bw: bufio.NewWriter(f)}, nil
}

// Append writes rec as one line and flushes it, so a crash leaves every finished trial on disk.
func (w *resultsWriter) Append(rec TrialRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode trial %d: %w", rec.Seq, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bw.Write(b)
	w.bw.WriteByte('\n')
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("write trial %d: %w", rec.Seq, err)
	}
	w.n++
	return nil
}

// freeze stops every later Append (they block for good: the process is about to exit) and returns how many
// records the file holds.
func (w *resultsWriter) freeze() int {
	w.mu.Lock()
	return w.n
}

func (w *resultsWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// WriteMeta replaces meta.json atomically (temp file and rename), so readers never see half a file.
func (w *resultsWriter) WriteMeta(m Meta) error {
	w.metaMu.Lock()
	defer w.metaMu.Unlock()
	if w.final {
		return nil
	}
	return w.writeMetaLocked(m)
}

// writeFinalMeta writes meta.json for the last time: later WriteMeta calls do nothing.
func (w *resultsWriter) writeFinalMeta(m Meta) error {
	w.metaMu.Lock()
	defer w.metaMu.Unlock()
	w.final = true
	return w.writeMetaLocked(m)
}

func (w *resultsWriter) writeMetaLocked(m Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode meta: %w", err)
	}
	tmp := filepath.Join(w.dir, MetaFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, MetaFile)); err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	return nil
}

// WriteHlogs writes <strategy>.hlog for each strategy: the end-to-end interval tagged with the strategy name and
// the detection-delay interval tagged <strategy>.detection, both covering [start, end]. It returns the file
// names written.
func (w *resultsWriter) WriteHlogs(names []string, rec *Recorder, start, end time.Time) ([]string, error) {
	var files []string
	for _, name := range names {
		file := name + HlogExt
		if err := writeHlog(filepath.Join(w.dir, file), name, rec, start, end); err != nil {
			return files, err
		}
		files = append(files, file)
	}
	return files, nil
}

func writeHlog(path, name string, rec *Recorder, start, end time.Time) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create hlog: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close hlog: %w", cerr)
		}
	}()
	lw := hdrhistogram.NewHistogramLogWriter(f) // base time 0: absolute timestamps
	if err := lw.OutputLogFormatVersion(); err != nil {
		return fmt.Errorf("write hlog %s: %w", name, err)
	}
	if err := lw.OutputStartTime(start.UnixMilli()); err != nil {
		return fmt.Errorf("write hlog %s: %w", name, err)
	}
	if err := lw.OutputLegend(); err != nil {
		return fmt.Errorf("write hlog %s: %w", name, err)
	}
	for _, iv := range []struct{ metric, tag string }{
		{MetricEndToEnd, name},
		{MetricDetection, name + DetectionTagSuffix},
	} {
		h := rec.Histogram(name, iv.metric)
		if h == nil {
			h = NewHistogram()
		} else {
			h = h.Clone() // tags and times belong to this file, not to the recorder
		}
		h.SetTag(iv.tag)
		h.SetStartTimeMs(start.UnixMilli())
		h.SetEndTimeMs(end.UnixMilli())
		if err := lw.OutputIntervalHistogram(h); err != nil {
			return fmt.Errorf("write hlog %s: %w", iv.tag, err)
		}
	}
	return nil
}
