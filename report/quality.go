package report

import (
	"cmp"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/cvatbench/cvatbench/bench/record"
)

// QualitySummary is what the chunk probes of a run measured, one row per image quality (record.ChunkProbe):
// what a quality does to the chunks every annotator downloads, and to the time until the jobs exist.
type QualitySummary struct {
	ChunkMode string `json:"chunk_mode"` // record.ChunksFirst or record.ChunksAll
	CacheMode string `json:"cache_mode"` // how the server builds chunks, as far as the run knows
	// SegmentSweep: rows are per image quality and segment size.
	SegmentSweep bool         `json:"segment_sweep,omitempty"`
	Rows         []QualityRow `json:"rows"`
}

// QualityRow summarises the trials of one image quality, over every strategy (the chunks and the creation do
// not depend on how the client waited). Percentiles are nearest-rank over trials (bytes, cold, warm,
// creation) or over frames (PSNR, SSIM); worst is the minimum over frames.
type QualityRow struct {
	ImageQuality int `json:"image_quality"`
	SegmentSize  int `json:"segment_size,omitempty"` // in segment-size sweeps
	Trials       int `json:"trials"`                 // ok trials
	Probed       int `json:"probed"`                 // trials whose probe read chunk 0
	ProbeErrors  int `json:"probe_errors"`           // trials whose probe failed somewhere (record.ChunkProbe.Error)
	Frames       int `json:"frames"`                 // frames scored
	// Bytes of the compressed chunks over the frames they held: the median of the per-trial ratio, and the
	// ratio of the totals (what --quality-target's saving compares).
	Bytes             int64     `json:"bytes"`        // compressed bytes read cold, all trials
	BytesFrames       int       `json:"bytes_frames"` // the frames those bytes held
	BytesPerFrameP50  *float64  `json:"bytes_per_frame_p50"`
	BytesPerFrameMean *float64  `json:"bytes_per_frame_mean"`
	ColdP50Ms         *float64  `json:"cold_p50_ms"`
	ColdP90Ms         *float64  `json:"cold_p90_ms"`
	WarmP50Ms         *float64  `json:"warm_p50_ms"`
	WarmP90Ms         *float64  `json:"warm_p90_ms"`
	PSNRP50           *Decibels `json:"psnr_p50_db"`
	PSNRWorst         *Decibels `json:"psnr_worst_db"`
	SSIMP50           *float64  `json:"ssim_p50"`
	SSIMWorst         *float64  `json:"ssim_worst"`
	// Creation is create_sent_at -> jobs_visible_at: the time until the jobs exist, which the task preview
	// makes depend on image_quality (CALIBRATION.md §5.2). Over ok trials with a jobs-visible time.
	CreationP50Ms *float64 `json:"creation_p50_ms"`
	CreationN     int      `json:"creation_n"`
}

// Decibels is a PSNR, which is +Inf for a frame identical to its original; JSON has no infinity, so it is
// written as the string "inf".
type Decibels float64

// MarshalJSON writes a number, or "inf".
func (d Decibels) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(d), 1) {
		return []byte(`"inf"`), nil
	}
	return json.Marshal(float64(d))
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (d *Decibels) UnmarshalJSON(b []byte) error {
	if string(b) == `"inf"` {
		*d = Decibels(math.Inf(1))
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*d = Decibels(v)
	return nil
}

func (d Decibels) String() string {
	if math.IsInf(float64(d), 1) {
		return "inf"
	}
	return strconv.FormatFloat(float64(d), 'f', 2, 64)
}

// HasChunkProbes reports whether any trial of run carries a chunk probe.
func HasChunkProbes(run *Run) bool {
	for _, t := range run.Trials {
		if t.Chunks != nil {
			return true
		}
	}
	return false
}

// summarizeQuality returns nil when no trial of the run was probed. Rows are per image quality, and per
// segment size in a segment-size sweep, ascending.
func summarizeQuality(run *Run) *QualitySummary {
	type cell struct{ quality, segment int }
	segmentSweep := isSegmentSweep(run)
	byCell := map[cell][]record.Trial{}
	mode := ""
	for _, t := range run.Trials {
		if t.Chunks != nil && mode == "" {
			mode = t.Chunks.Mode
		}
		c := cell{quality: t.ImageQuality}
		if segmentSweep {
			c.segment = t.SegmentSize
		}
		byCell[c] = append(byCell[c], t)
	}
	if mode == "" {
		return nil
	}
	q := &QualitySummary{ChunkMode: mode, CacheMode: cacheMode(run.Meta), SegmentSweep: segmentSweep}
	cells := slices.SortedFunc(maps.Keys(byCell), func(a, b cell) int {
		return cmp.Or(cmp.Compare(a.quality, b.quality), cmp.Compare(a.segment, b.segment))
	})
	for _, c := range cells {
		row := qualityRow(c.quality, byCell[c])
		row.SegmentSize = c.segment
		q.Rows = append(q.Rows, row)
	}
	return q
}

func qualityRow(quality int, trials []record.Trial) QualityRow {
	row := QualityRow{ImageQuality: quality}
	var perTrialBytes, cold, warm, creation, ssim, psnr []float64
	var totalBytes int64
	totalFrames := 0
	for _, t := range trials {
		if t.Result != record.ResultOK {
			continue
		}
		row.Trials++
		if t.CreateSentAt != nil && t.JobsVisibleAt != nil {
			creation = append(creation, float64(t.JobsVisibleAt.Sub(*t.CreateSentAt))/1e6)
		}
		p := t.Chunks
		if p == nil {
			continue
		}
		if p.Error != "" {
			row.ProbeErrors++
		}
		if p.ChunksRead == 0 {
			continue
		}
		row.Probed++
		if p.Frames > 0 {
			perTrialBytes = append(perTrialBytes, p.BytesPerFrame())
			totalBytes += p.Bytes
			totalFrames += p.Frames
		}
		if p.ColdMs != nil {
			cold = append(cold, *p.ColdMs)
		}
		if p.WarmMs != nil {
			warm = append(warm, *p.WarmMs)
		}
		ssim = append(ssim, p.SSIM...)
		for _, v := range p.PSNRdB {
			if v == nil {
				psnr = append(psnr, math.Inf(1))
			} else {
				psnr = append(psnr, *v)
			}
		}
	}
	row.Frames = len(ssim)
	row.BytesPerFrameP50 = nearest(perTrialBytes, 50)
	row.Bytes, row.BytesFrames = totalBytes, totalFrames
	if totalFrames > 0 {
		row.BytesPerFrameMean = ptr(float64(totalBytes) / float64(totalFrames))
	}
	row.ColdP50Ms, row.ColdP90Ms = nearest(cold, 50), nearest(cold, 90)
	row.WarmP50Ms, row.WarmP90Ms = nearest(warm, 50), nearest(warm, 90)
	row.SSIMP50, row.SSIMWorst = nearest(ssim, 50), minimum(ssim)
	if v := nearest(psnr, 50); v != nil {
		row.PSNRP50 = ptr(Decibels(*v))
		row.PSNRWorst = ptr(Decibels(*minimum(psnr)))
	}
	row.CreationP50Ms, row.CreationN = nearest(creation, 50), len(creation)
	return row
}

// nearest is the nearest-rank percentile p of xs (which it sorts), nil when xs is empty.
func nearest(xs []float64, p float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	slices.Sort(xs)
	return ptr(rankQuantile(xs, p))
}

func minimum(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	return ptr(slices.Min(xs))
}

func ptr[T any](v T) *T { return &v }

// cacheMode says how the server built the chunks the probe read: the emulator knows its setting; of a real
// server the run knows only CVAT's default (API.md §9.7).
func cacheMode(m record.Meta) string {
	switch {
	case m.Target != "embedded":
		return "the server's setting (on the fly unless CVAT_ALLOW_STATIC_CACHE is on)"
	case m.Config.SimStaticCache:
		return "static (CVAT_ALLOW_STATIC_CACHE on: chunks encoded during creation)"
	default:
		return "on the fly (CVAT's default: the first read builds the chunk)"
	}
}
