package report

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/record"
)

// probedTrial is an ok trial of quality q whose probe read frames frames of bytesPerFrame bytes, scored ssim
// (and PSNR 10·ssim+20, or identical when ssim is 1), created in creationMs.
func probedTrial(q int, bytesPerFrame int64, creationMs float64, ssim ...float64) record.Trial {
	sent := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	visible := sent.Add(time.Duration(creationMs * float64(time.Millisecond)))
	p := &record.ChunkProbe{Mode: record.ChunksFirst, ChunksRead: 1, Frames: len(ssim), Bytes: bytesPerFrame * int64(len(ssim)),
		ColdMs: f(200 + float64(q)), WarmMs: f(10)}
	for _, s := range ssim {
		p.SSIM = append(p.SSIM, s)
		if s == 1 {
			p.PSNRdB = append(p.PSNRdB, nil)
		} else {
			p.PSNRdB = append(p.PSNRdB, f(10*s+20))
		}
	}
	return record.Trial{Strategy: "poll", ImageQuality: q, Result: record.ResultOK, CreateSentAt: &sent, JobsVisibleAt: &visible, Chunks: p}
}

// A sweep whose answer is known: worst frames 0.90 (q30), 0.94 (q50), 0.96 (q70), 0.99 (q90).
func constructedSweep() *Run {
	run := &Run{Meta: record.Meta{Target: "embedded", Config: bench.Config{Strategies: []string{"poll"}, ImageQualities: []int{30, 50, 70, 90}}}}
	run.Trials = []record.Trial{
		probedTrial(30, 1000, 400, 0.93, 0.90), probedTrial(30, 1200, 420, 0.95, 0.92),
		probedTrial(50, 2000, 450, 0.97, 0.94), probedTrial(50, 2000, 460, 0.96, 0.95),
		probedTrial(70, 3000, 500, 0.98, 0.96), probedTrial(70, 3000, 510, 0.97, 0.99),
		probedTrial(90, 6000, 600, 1, 0.99), probedTrial(90, 6000, 610, 1, 1),
	}
	return run
}

func TestSummarizeQuality(t *testing.T) {
	q := summarizeQuality(constructedSweep())
	if q == nil || len(q.Rows) != 4 || q.ChunkMode != record.ChunksFirst || !strings.Contains(q.CacheMode, "on the fly") {
		t.Fatalf("quality summary %+v", q)
	}
	r30, r90 := q.Rows[0], q.Rows[3]
	if r30.ImageQuality != 30 || r30.Trials != 2 || r30.Probed != 2 || r30.Frames != 4 {
		t.Errorf("q30 row %+v", r30)
	}
	if *r30.BytesPerFrameP50 != 1000 || *r30.BytesPerFrameMean != 1100 || *r30.SSIMWorst != 0.90 || *r30.SSIMP50 != 0.92 {
		t.Errorf("q30 bytes p50 %v mean %v, SSIM worst %v p50 %v; want 1000, 1100, 0.90, 0.92",
			*r30.BytesPerFrameP50, *r30.BytesPerFrameMean, *r30.SSIMWorst, *r30.SSIMP50)
	}
	if *r30.CreationP50Ms != 400 || r30.CreationN != 2 || *r30.ColdP50Ms != 230 || *r30.WarmP90Ms != 10 {
		t.Errorf("q30 creation %v (n %d), cold p50 %v, warm p90 %v", *r30.CreationP50Ms, r30.CreationN, *r30.ColdP50Ms, *r30.WarmP90Ms)
	}
	// Three of q90's four frames are identical to their originals: PSNR p50 is infinite, the worst is not.
	if !math.IsInf(float64(*r90.PSNRP50), 1) || float64(*r90.PSNRWorst) != 10*0.99+20 {
		t.Errorf("q90 PSNR p50 %v worst %v", *r90.PSNRP50, *r90.PSNRWorst)
	}
	b, err := json.Marshal(r90)
	if err != nil || !strings.Contains(string(b), `"psnr_p50_db":"inf"`) {
		t.Fatalf("q90 row JSON %s (%v)", b, err)
	}
	var back QualityRow
	if err := json.Unmarshal(b, &back); err != nil || !math.IsInf(float64(*back.PSNRP50), 1) {
		t.Errorf("round trip of an infinite PSNR: %v, %v", back.PSNRP50, err)
	}
	if summarizeQuality(&Run{Trials: []record.Trial{{Result: record.ResultOK}}}) != nil {
		t.Error("a run without probes has a quality summary")
	}
}

func TestQualityTargetPicksTheLowestQualityMeetingIt(t *testing.T) {
	q := summarizeQuality(constructedSweep())
	tests := []struct {
		target  string
		met     bool
		quality int
		saving  float64
	}{
		{"ssim>=0.95", true, 70, 0.5}, // 3000 vs 6000 bytes per frame
		{"ssim>=0.96", true, 70, 0.5}, // q70's worst is exactly 0.96
		{"ssim>0.96", true, 90, 0},    // strictly above: only q90
		{"ssim>=0.90", true, 30, 1 - 1100.0/6000},
		{"ssim>=0.991", false, 90, 0}, // best worst frame is q90's 0.99
		{"psnr>=29.5", true, 70, 0.5}, // PSNR = 10·SSIM+20: q70's worst is 29.6 dB
		{"psnr>=29.95dB", false, 90, 0},
	}
	for _, tc := range tests {
		target, err := ParseQualityTarget(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		v, err := EvaluateQualityTarget(q, target)
		if err != nil {
			t.Fatal(err)
		}
		got := v.Quality
		if !v.Met {
			got = v.Best
		}
		if v.Met != tc.met || got != tc.quality || math.Abs(v.Saving-tc.saving) > 1e-9 {
			t.Errorf("%s: met %v quality %d (best %d) saving %.4f; want met %v quality %d saving %.4f",
				tc.target, v.Met, v.Quality, v.Best, v.Saving, tc.met, tc.quality, tc.saving)
		}
		var out bytes.Buffer
		if err := WriteQualityVerdict(&out, v); err != nil || strings.Count(out.String(), "\n") != 1 {
			t.Errorf("%s: verdict %q (%v), want one line", tc.target, out.String(), err)
		}
	}
}

func TestQualityTargetSkipsQualitiesWithFailedProbes(t *testing.T) {
	run := constructedSweep()
	run.Trials[4].Chunks.Error = "job 7 chunk 0: 429 Too Many Requests" // q70: not every frame was scored
	target, _ := ParseQualityTarget("ssim>=0.95")
	v, err := EvaluateQualityTarget(summarizeQuality(run), target)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Met || v.Quality != 90 || len(v.SkippedProbeErrors) != 1 || v.SkippedProbeErrors[0] != 70 {
		t.Errorf("verdict %+v, want q90 with q70 skipped", v)
	}
	if _, err := EvaluateQualityTarget(nil, target); err != ErrNoChunkProbes {
		t.Errorf("no probes: %v", err)
	}
}

func TestParseQualityTarget(t *testing.T) {
	good := map[string]string{"ssim>=0.95": "ssim>=0.95", " SSIM>0.9 ": "ssim>0.9", "psnr>=40": "psnr>=40",
		"psnr>=38.5dB": "psnr>=38.5", "ssim>=-0.5": "ssim>=-0.5"}
	for in, want := range good {
		got, err := ParseQualityTarget(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseQualityTarget(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	bad := map[string]string{"": "metric", "vmaf>=90": "metric", "ssim<0.9": "comparison", "ssim=0.9": "comparison",
		"ssim>=": "number", "ssim>=NaN": "number", "ssim>=1.01": "[-1, 1]", "psnr>=0": "positive", "psnr>=inf": "number",
		"ssim>=0.9x": "number"}
	for in, want := range bad {
		if _, err := ParseQualityTarget(in); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseQualityTarget(%q) = %v, want one line mentioning %q", in, err, want)
		}
	}
}
