package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults shared by the library and the CLI flags, so --help and Config agree. They are chosen so that
// `cvatbench run` with every strategy on the emulator's cvat-default profile ends within about 3 minutes on
// 2 cores: the emulator has 2 import workers, so more than about 3 concurrent trials only queue.
const (
	DefaultTasksPerStrategy = 8
	DefaultConcurrency      = 3
	DefaultImages           = 10
	DefaultImageSize        = "640x480"
	DefaultImageFormat      = "jpeg"
	DefaultImageQuality     = 70 // the CLI's and SDK's default (API.md §10.2)
	DefaultSegmentSize      = 5
	DefaultSeed             = 1
	DefaultTimeout          = 2 * time.Minute
	DefaultUploadMode       = "sdk"
	DefaultOutDir           = "results"
)

// MaxTimeout is the largest per-trial timeout: NewHistogram tracks values up to 30 minutes, so a longer
// timeout could produce latencies the histogram cannot hold.
const MaxTimeout = 30 * time.Minute

// Upper bounds of Config, checked by Validate. Beyond them a run does not become a bigger benchmark but a crash:
// the schedule holds one slot per trial, every worker owns its own histograms (about 190 KB each), and the
// generated images are all built and held in memory before the first trial (about 0.5 byte per pixel as
// JPEG, 1.6 as PNG, plus w×h×4 bytes while one is drawn). They are far above what a CVAT server can take in
// one run.
const (
	// MaxTasksPerStrategy bounds Config.TasksPerStrategy (per strategy and image quality).
	MaxTasksPerStrategy = 100_000
	// MaxTrials bounds Config.Trials(): strategies × image qualities × tasks per strategy.
	MaxTrials = 1_000_000
	// MaxConcurrency bounds the closed-loop workers; each keeps its own histograms.
	MaxConcurrency = 1_000
	// MaxImages bounds the images per task, generated or read from ImagesDir.
	MaxImages = 10_000
	// MaxImageSide bounds both sides of a generated image, in pixels.
	MaxImageSide = 8192
	// MaxBatch bounds Config.Batch: tasks created and waited for together.
	MaxBatch = 1000
	// MaxWorkloadPixels bounds Images × width × height of the generated images (2^30, about 1.07
	// gigapixels): roughly 0.5 GB of JPEG or 1.7 GB of PNG held in memory for the whole run.
	MaxWorkloadPixels = 1 << 30
)

// Image formats and upload modes accepted by Config.
var (
	ImageFormats = []string{"jpeg", "png"}
	UploadModes  = []string{"single", "sdk", "tus"}
)

// Config is everything that defines a run. It is plain data, echoed into meta.json; what cannot be written to
// a file (clients, clocks, observers) is passed as an Option.
type Config struct {
	Strategies       []string      // names from strategies.Names(), each once
	TasksPerStrategy int           // trials per strategy and image quality
	Concurrency      int           // closed loop: this many workers; exclusive with Rate
	Rate             float64       // open loop: trials started per second; exclusive with Concurrency
	MaxInFlight      int           // open loop: trials at once at most (0: MaxConcurrency); one due beyond it is dropped
	Images           int           // images per task; with ImagesDir, 0 means every image in the directory
	ImageSize        string        // "WxH" of generated images, e.g. "640x480"
	ImageFormat      string        // "jpeg" or "png" for generated images
	ImagesDir        string        // read images from here (sorted by name) instead of generating them
	ImageQualities   []int         // image_quality values, 1..100; more than one makes a sweep
	SegmentSizes     []int         // frames per job, 0 = one job per task; more than one makes a sweep
	Seed             int64         // seeds the schedule, the generated images and strategy jitter
	Timeout          time.Duration // per trial: task creation, upload and wait together
	Duration         time.Duration // > 0: no trial starts after this much of the run (in flight ones finish)
	UploadMode       string        // "single", "sdk" or "tus"
	Org              string        // organization slug, "" for the personal sandbox
	Target           string        // CVAT URL without credentials, or "" for the embedded emulator
	SimProfile       string        // emulator profile when Target is ""
	SimFaults        string        // emulator fault spec (cvatsim.ParseFaults, canonical form), "" for none
	SimStaticCache   bool          // emulator: CVAT_ALLOW_STATIC_CACHE, so use_cache=false tasks encode chunks at creation
	SimWhatIf        string        // emulator behaviours no CVAT release has (cvatsim.ParseWhatIf, canonical), "" for none
	// Batch > 0 creates and uploads the trials of a strategy (and cell) Batch at a time, then waits for the
	// whole batch: per task for the per-task strategies, with calls covering the batch's project for the
	// project-level ones. Closed loop only; Concurrency is then batches in flight, and Timeout bounds a batch.
	Batch  int
	Chunks string // chunk probe after each trial: ChunksFirst, ChunksAll, ChunksNone; "": ChunkMode decides
	OutDir string // results go to OutDir/<run-id>/ (OutDir/<run-id>.shard-<i>-of-<n>/ for a shard)
	// RunID, when set, is the run's id instead of a new one: the shards of one run share it. It has the form
	// the runner makes ("20261203T120000Z-1a2b"), which cleanup relies on.
	RunID string
	// ShardCount > 0 makes this process the ShardIndex-th (0-based) of ShardCount shares of the run: the trials
	// whose seq is ShardIndex modulo ShardCount, and its share of the concurrency.
	ShardIndex, ShardCount int

	// Strategy knobs, passed to strategies.New.
	PollInterval   time.Duration
	SDKPeriod      time.Duration
	CLIPeriod      time.Duration
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	BackoffFactor  float64
	BackoffJitter  float64
	SafetyPoll     time.Duration
	WebhookListen  string // address the webhook receiver listens on
	WebhookURL     string // URL CVAT delivers to, if it differs from the listen address
}

// Trials is the number of trials the config schedules.
func (c Config) Trials() int {
	return len(c.Strategies) * len(c.ImageQualities) * max(len(c.SegmentSizes), 1) * c.TasksPerStrategy
}

// Batches is the number of batches a batch run schedules: every cell's tasks in batches of Batch, the last
// one smaller.
func (c Config) Batches() int {
	if c.Batch <= 0 {
		return 0
	}
	return len(c.Strategies) * len(c.ImageQualities) * max(len(c.SegmentSizes), 1) * ((c.TasksPerStrategy + c.Batch - 1) / c.Batch)
}

// InFlightLimit is MaxInFlight with 0 resolved: the open loop's bound on trials at once.
func (c Config) InFlightLimit() int {
	if c.MaxInFlight > 0 {
		return c.MaxInFlight
	}
	return MaxConcurrency
}

// Sweep reports whether the run varies image quality or segment size, so that its rows are per cell.
// MaxShards bounds Config.ShardCount.
const MaxShards = 1000

// Sharded reports whether the run is one share of a larger one.
func (c Config) Sharded() bool { return c.ShardCount > 0 }

// InShard reports whether the trial with this seq belongs to the shard.
func (c Config) InShard(seq int) bool { return !c.Sharded() || seq%c.ShardCount == c.ShardIndex }

// ShardConcurrency is the shard's share of Concurrency (the remainder goes to the first shards), at least 1.
func (c Config) ShardConcurrency() int {
	if !c.Sharded() {
		return c.Concurrency
	}
	n := c.Concurrency / c.ShardCount
	if c.ShardIndex < c.Concurrency%c.ShardCount {
		n++
	}
	return max(n, 1)
}

// ShardTrials is how many of Trials() the shard runs.
func (c Config) ShardTrials() int {
	if !c.Sharded() {
		return c.Trials()
	}
	n := c.Trials() / c.ShardCount
	if c.ShardIndex < c.Trials()%c.ShardCount {
		n++
	}
	return n
}

func (c Config) Sweep() bool { return len(c.ImageQualities) > 1 || len(c.SegmentSizes) > 1 }

// ChunkMode is Config.Chunks with "" resolved: the first chunk in a sweep (of image quality or segment size),
// where what the setting does to the chunks is the question, nothing otherwise.
func (c Config) ChunkMode() string {
	switch {
	case c.Chunks != "":
		return c.Chunks
	case c.Sweep():
		return ChunksFirst
	default:
		return ChunksNone
	}
}

// Validate reports every problem of c at once (errors.Join). Nothing is clamped or defaulted. Whether the
// strategies exist and the webhook receiver's address works is the engine's to say (bench.Validate).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	seen := map[string]bool{}
	for _, s := range c.Strategies {
		if seen[s] {
			bad("strategy %q given twice", s)
		}
		seen[s] = true
	}
	switch {
	case c.TasksPerStrategy < 1:
		bad("tasks per strategy %d must be at least 1", c.TasksPerStrategy)
	case c.TasksPerStrategy > MaxTasksPerStrategy:
		bad("tasks per strategy %d exceeds the limit of %d", c.TasksPerStrategy, MaxTasksPerStrategy)
	case c.Trials() > MaxTrials: // factors are bounded here, so the product cannot overflow
		bad("%d trials (%d strategies × %d image qualities × %d segment sizes × %d tasks) exceed the limit of %d",
			c.Trials(), len(c.Strategies), len(c.ImageQualities), len(c.SegmentSizes), c.TasksPerStrategy, MaxTrials)
	}
	switch {
	case c.Concurrency != 0 && c.Rate != 0:
		bad("concurrency %d and rate %g are exclusive: closed loop or open loop, not both", c.Concurrency, c.Rate)
	case c.Concurrency == 0 && c.Rate == 0:
		bad("neither concurrency nor rate given")
	case c.Rate != 0 && (c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0)):
		bad("rate %g must be a positive number of trials per second", c.Rate)
	case c.Concurrency < 0:
		bad("concurrency %d must be positive", c.Concurrency)
	case c.Concurrency > MaxConcurrency:
		bad("concurrency %d exceeds the limit of %d", c.Concurrency, MaxConcurrency)
	case c.MaxInFlight < 0 || c.MaxInFlight > MaxConcurrency:
		bad("max in flight %d is outside 0..%d", c.MaxInFlight, MaxConcurrency)
	case c.MaxInFlight > 0 && c.Rate == 0:
		bad("max in flight %d applies to open loop (rate) only; closed loop holds concurrency trials at once", c.MaxInFlight)
	case c.Batch == 0 && c.Concurrency > 0 && c.TasksPerStrategy >= 1 && c.Concurrency > c.Trials() && c.Trials() > 0:
		bad("concurrency %d exceeds the %d scheduled trials: some workers would never run", c.Concurrency, c.Trials())
	}
	switch {
	case c.Batch == 0:
	case c.Batch < 0:
		bad("batch %d must be positive (0: no batches)", c.Batch)
	case c.Batch > MaxBatch:
		bad("batch %d exceeds the limit of %d tasks", c.Batch, MaxBatch)
	case c.Batch > c.TasksPerStrategy && c.TasksPerStrategy >= 1:
		bad("batch %d exceeds the %d tasks per strategy: a batch holds one strategy's tasks", c.Batch, c.TasksPerStrategy)
	case c.Rate != 0:
		bad("batch %d runs closed loop: batches of tasks are created together, not at a rate", c.Batch)
	case c.Concurrency > c.Batches() && c.Batches() > 0:
		bad("concurrency %d exceeds the %d batches: some workers would never run", c.Concurrency, c.Batches())
	}
	if c.ImagesDir == "" {
		if c.Images < 1 {
			bad("images %d must be at least 1", c.Images)
		}
		w, h, err := ParseImageSize(c.ImageSize)
		if err != nil {
			errs = append(errs, err)
		}
		// Checked only with a count and a size in range: the product then fits in an int64.
		if err == nil && c.Images >= 1 && c.Images <= MaxImages && int64(c.Images)*int64(w)*int64(h) > MaxWorkloadPixels {
			bad("images %d of %s make %d pixels, above the limit of %d held in memory: use fewer or smaller images",
				c.Images, c.ImageSize, int64(c.Images)*int64(w)*int64(h), int64(MaxWorkloadPixels))
		}
		if !slices.Contains(ImageFormats, c.ImageFormat) {
			bad("image format %q is not one of %s", c.ImageFormat, strings.Join(ImageFormats, ", "))
		}
	} else if c.Images < 0 {
		bad("images %d must not be negative", c.Images)
	}
	if c.Images > MaxImages {
		bad("images %d exceeds the limit of %d per task", c.Images, MaxImages)
	}
	if len(c.ImageQualities) == 0 {
		bad("no image quality given")
	}
	q := map[int]bool{}
	for _, v := range c.ImageQualities {
		switch {
		case v < 1 || v > 100:
			bad("image quality %d is outside 1..100", v)
		case q[v]:
			bad("image quality %d given twice", v)
		}
		q[v] = true
	}
	if len(c.SegmentSizes) == 0 {
		bad("no segment size given")
	}
	segs := map[int]bool{}
	for _, v := range c.SegmentSizes {
		switch {
		case v < 0:
			bad("segment size %d must not be negative", v)
		case segs[v]:
			bad("segment size %d given twice", v)
		}
		segs[v] = true
	}
	if c.Chunks != "" && !slices.Contains(ChunkModes, c.Chunks) {
		bad("chunks %q is not one of %s", c.Chunks, strings.Join(ChunkModes, ", "))
	}
	if c.Duration < 0 {
		bad("duration %v must not be negative", c.Duration)
	}
	switch {
	case c.Timeout <= 0:
		bad("timeout %v must be positive", c.Timeout)
	case c.Timeout > MaxTimeout:
		bad("timeout %v exceeds %v, the largest latency the histograms hold", c.Timeout, MaxTimeout)
	}
	if !slices.Contains(UploadModes, c.UploadMode) {
		bad("upload mode %q is not one of %s", c.UploadMode, strings.Join(UploadModes, ", "))
	}
	switch {
	case c.ShardCount < 0 || c.ShardCount > MaxShards:
		bad("shard count %d is outside 1..%d", c.ShardCount, MaxShards)
	case c.ShardCount > 0 && (c.ShardIndex < 0 || c.ShardIndex >= c.ShardCount):
		bad("shard %d/%d: the index must be in 0..%d", c.ShardIndex, c.ShardCount, c.ShardCount-1)
	case c.ShardCount == 0 && c.ShardIndex != 0:
		bad("shard index %d without a shard count", c.ShardIndex)
	case c.ShardCount > 0 && c.RunID == "":
		bad("shard %d/%d needs the run id all shards share", c.ShardIndex, c.ShardCount)
	case c.ShardCount > c.Trials() && c.Trials() > 0:
		bad("%d shards for %d trials: some shard would run none", c.ShardCount, c.Trials())
	}
	if c.OutDir == "" {
		bad("no output directory given")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"poll interval", c.PollInterval}, {"sdk period", c.SDKPeriod}, {"cli period", c.CLIPeriod},
		{"backoff initial", c.BackoffInitial}, {"backoff max", c.BackoffMax}, {"safety poll", c.SafetyPoll},
	} {
		if d.v <= 0 {
			bad("%s %v must be positive", d.name, d.v)
		}
	}
	if c.BackoffMax > 0 && c.BackoffInitial > c.BackoffMax {
		bad("backoff initial %v exceeds backoff max %v", c.BackoffInitial, c.BackoffMax)
	}
	if c.BackoffFactor < 1 || math.IsNaN(c.BackoffFactor) || math.IsInf(c.BackoffFactor, 0) {
		bad("backoff factor %g must be at least 1", c.BackoffFactor)
	}
	if c.BackoffJitter < 0 || c.BackoffJitter >= 1 || math.IsNaN(c.BackoffJitter) {
		bad("backoff jitter %g is outside [0, 1)", c.BackoffJitter)
	}
	return errors.Join(errs...)
}

// ParseImageSize parses "WxH" with both sides in 1..MaxImageSide.
func ParseImageSize(s string) (w, h int, err error) {
	ws, hs, ok := strings.Cut(s, "x")
	if ok {
		w, err = strconv.Atoi(ws)
		if err == nil {
			h, err = strconv.Atoi(hs)
		}
	}
	if !ok || err != nil || w < 1 || h < 1 || w > MaxImageSide || h > MaxImageSide {
		return 0, 0, fmt.Errorf("image size %q is not WIDTHxHEIGHT with sides in 1..%d", s, MaxImageSide)
	}
	return w, h, nil
}

// configJSON is Config at the JSON boundary: durations carry their unit in the name.
type configJSON struct {
	Strategies       []string `json:"strategies"`
	TasksPerStrategy int      `json:"tasks_per_strategy"`
	Concurrency      int      `json:"concurrency,omitempty"`
	RatePerS         float64  `json:"rate_per_s,omitempty"`
	MaxInFlight      int      `json:"max_in_flight,omitempty"`
	Images           int      `json:"images"`
	ImageSize        string   `json:"image_size,omitempty"`
	ImageFormat      string   `json:"image_format,omitempty"`
	ImagesDir        string   `json:"images_dir,omitempty"`
	ImageQualities   []int    `json:"image_qualities"`
	SegmentSizes     []int    `json:"segment_sizes"`
	SegmentSize      *int     `json:"segment_size,omitempty"` // before segment-size sweeps; read, not written
	Seed             int64    `json:"seed"`
	TimeoutMs        float64  `json:"timeout_ms"`
	DurationMs       float64  `json:"duration_ms,omitempty"`
	UploadMode       string   `json:"upload_mode"`
	Org              string   `json:"org,omitempty"`
	Target           string   `json:"target,omitempty"`
	SimProfile       string   `json:"sim_profile,omitempty"`
	SimFaults        string   `json:"sim_faults,omitempty"`
	SimStaticCache   bool     `json:"sim_static_cache,omitempty"`
	SimWhatIf        string   `json:"sim_what_if,omitempty"`
	Batch            int      `json:"batch,omitempty"`
	Chunks           string   `json:"chunks"`
	OutDir           string   `json:"out_dir"`
	RunID            string   `json:"run_id,omitempty"`
	ShardIndex       int      `json:"shard_index,omitempty"`
	ShardCount       int      `json:"shard_count,omitempty"`
	PollIntervalMs   float64  `json:"poll_interval_ms"`
	SDKPeriodMs      float64  `json:"sdk_period_ms"`
	CLIPeriodMs      float64  `json:"cli_period_ms"`
	BackoffInitialMs float64  `json:"backoff_initial_ms"`
	BackoffMaxMs     float64  `json:"backoff_max_ms"`
	BackoffFactor    float64  `json:"backoff_factor"`
	BackoffJitter    float64  `json:"backoff_jitter"`
	SafetyPollMs     float64  `json:"safety_poll_ms"`
	WebhookListen    string   `json:"webhook_listen,omitempty"`
	WebhookURL       string   `json:"webhook_url,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fromMs(v float64) time.Duration { return time.Duration(math.Round(v * float64(time.Millisecond))) }

// MarshalJSON writes durations as milliseconds in fields ending in _ms.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(configJSON{
		Strategies: c.Strategies, TasksPerStrategy: c.TasksPerStrategy, Concurrency: c.Concurrency,
		RatePerS: c.Rate, MaxInFlight: c.MaxInFlight, Images: c.Images, ImageSize: c.ImageSize, ImageFormat: c.ImageFormat,
		ImagesDir: c.ImagesDir, ImageQualities: c.ImageQualities, SegmentSizes: c.SegmentSizes, Seed: c.Seed,
		TimeoutMs: ms(c.Timeout), DurationMs: ms(c.Duration), UploadMode: c.UploadMode, Org: c.Org, Target: c.Target,
		SimProfile: c.SimProfile, SimFaults: c.SimFaults, SimStaticCache: c.SimStaticCache, SimWhatIf: c.SimWhatIf, Batch: c.Batch, Chunks: c.ChunkMode(), OutDir: c.OutDir, RunID: c.RunID, ShardIndex: c.ShardIndex, ShardCount: c.ShardCount, PollIntervalMs: ms(c.PollInterval),
		SDKPeriodMs: ms(c.SDKPeriod), CLIPeriodMs: ms(c.CLIPeriod), BackoffInitialMs: ms(c.BackoffInitial),
		BackoffMaxMs: ms(c.BackoffMax), BackoffFactor: c.BackoffFactor, BackoffJitter: c.BackoffJitter,
		SafetyPollMs: ms(c.SafetyPoll), WebhookListen: c.WebhookListen, WebhookURL: c.WebhookURL,
	})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (c *Config) UnmarshalJSON(b []byte) error {
	var j configJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = Config{
		Strategies: j.Strategies, TasksPerStrategy: j.TasksPerStrategy, Concurrency: j.Concurrency,
		Rate: j.RatePerS, MaxInFlight: j.MaxInFlight, Images: j.Images, ImageSize: j.ImageSize, ImageFormat: j.ImageFormat,
		ImagesDir: j.ImagesDir, ImageQualities: j.ImageQualities, SegmentSizes: j.SegmentSizes, Seed: j.Seed,
		Timeout: fromMs(j.TimeoutMs), Duration: fromMs(j.DurationMs), UploadMode: j.UploadMode, Org: j.Org, Target: j.Target,
		SimProfile: j.SimProfile, SimFaults: j.SimFaults, SimStaticCache: j.SimStaticCache, SimWhatIf: j.SimWhatIf, Batch: j.Batch, Chunks: j.Chunks, OutDir: j.OutDir, RunID: j.RunID, ShardIndex: j.ShardIndex, ShardCount: j.ShardCount, PollInterval: fromMs(j.PollIntervalMs),
		SDKPeriod: fromMs(j.SDKPeriodMs), CLIPeriod: fromMs(j.CLIPeriodMs),
		BackoffInitial: fromMs(j.BackoffInitialMs), BackoffMax: fromMs(j.BackoffMaxMs),
		BackoffFactor: j.BackoffFactor, BackoffJitter: j.BackoffJitter, SafetyPoll: fromMs(j.SafetyPollMs),
		WebhookListen: j.WebhookListen, WebhookURL: j.WebhookURL,
	}
	if len(c.SegmentSizes) == 0 && j.SegmentSize != nil { // a run recorded before segment-size sweeps
		c.SegmentSizes = []int{*j.SegmentSize}
	}
	return nil
}
