package report

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// QualityTarget is a fidelity floor every scored frame must reach: "ssim>=0.95", "psnr>=40" (dB).
type QualityTarget struct {
	Metric string  // "ssim" or "psnr"
	Strict bool    // ">" rather than ">="
	Value  float64 // SSIM in [-1, 1], or PSNR in dB
}

// String is the canonical spelling.
func (t QualityTarget) String() string {
	op := ">="
	if t.Strict {
		op = ">"
	}
	return t.Metric + op + strconv.FormatFloat(t.Value, 'f', -1, 64)
}

// ParseQualityTarget reads "ssim>=0.95", "ssim>0.9", "psnr>=40" or "psnr>=40dB".
func ParseQualityTarget(s string) (QualityTarget, error) {
	bad := func(why string) (QualityTarget, error) {
		return QualityTarget{}, fmt.Errorf("quality target %q: %s (want ssim>=VALUE or psnr>=DB, e.g. ssim>=0.95)", s, why)
	}
	spec := strings.ToLower(strings.TrimSpace(s))
	var t QualityTarget
	var rest string
	for _, m := range []string{"ssim", "psnr"} {
		if r, ok := strings.CutPrefix(spec, m); ok {
			t.Metric, rest = m, r
		}
	}
	if t.Metric == "" {
		return bad("the metric is not ssim or psnr")
	}
	switch {
	case strings.HasPrefix(rest, ">="):
		rest = rest[2:]
	case strings.HasPrefix(rest, ">"):
		t.Strict, rest = true, rest[1:]
	default:
		return bad("the comparison is not >= or >")
	}
	if t.Metric == "psnr" {
		rest = strings.TrimSuffix(rest, "db")
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
	switch {
	case err != nil || math.IsNaN(v) || math.IsInf(v, 0):
		return bad("the value is not a number")
	case t.Metric == "ssim" && (v < -1 || v > 1):
		return bad("SSIM lies in [-1, 1]")
	case t.Metric == "psnr" && v <= 0:
		return bad("PSNR must be positive dB")
	}
	t.Value = v
	return t, nil
}

func (t QualityTarget) meets(v float64) bool {
	if t.Strict {
		return v > t.Value
	}
	return v >= t.Value
}

// worst is the row's lowest frame score for the target's metric.
func (t QualityTarget) worst(row QualityRow) (float64, bool) {
	if t.Metric == "ssim" {
		if row.SSIMWorst == nil {
			return 0, false
		}
		return *row.SSIMWorst, true
	}
	if row.PSNRWorst == nil {
		return 0, false
	}
	return float64(*row.PSNRWorst), true
}

// QualityVerdict is the answer to a quality target.
type QualityVerdict struct {
	Target  QualityTarget
	Met     bool
	Quality int     // the lowest quality whose every frame meets the target (Met)
	Worst   float64 // its worst frame (Met), or the best worst frame of any quality (not Met)
	Frames  int
	Best    int // not Met: the quality with the best worst frame
	// Against the highest quality swept: its bytes per frame, the chosen one's, and the saving in [0, 1).
	Highest            int
	HighestBytes       float64
	ChosenBytes        float64
	Saving             float64
	SkippedProbeErrors []int // qualities left out because some probe failed: not every frame was scored
}

// ErrNoChunkProbes: the run has nothing a quality target can be checked against.
var ErrNoChunkProbes = errors.New("the run read no chunks (run it with --chunks first)")

// EvaluateQualityTarget finds the lowest image quality of q whose every scored frame meets t (over every
// segment size, in a segment-size sweep). A quality some of whose probes failed does not qualify: its
// unscored frames might not meet it.
func EvaluateQualityTarget(q *QualitySummary, t QualityTarget) (QualityVerdict, error) {
	v := QualityVerdict{Target: t}
	if q == nil || len(q.Rows) == 0 {
		return v, ErrNoChunkProbes
	}
	type quality struct {
		q, frames, probeErrors, bytesFrames int
		worst                               float64
		bytes                               int64
	}
	var qs []*quality // ascending: rows are by quality, then segment size
	for _, row := range q.Rows {
		w, ok := t.worst(row)
		if !ok || row.Frames == 0 {
			continue
		}
		if len(qs) == 0 || qs[len(qs)-1].q != row.ImageQuality {
			qs = append(qs, &quality{q: row.ImageQuality, worst: math.Inf(1)})
		}
		a := qs[len(qs)-1]
		a.worst = min(a.worst, w)
		a.frames += row.Frames
		a.probeErrors += row.ProbeErrors
		a.bytes += row.Bytes
		a.bytesFrames += row.BytesFrames
	}
	if len(qs) == 0 {
		return v, ErrNoChunkProbes
	}
	perFrame := func(a *quality) float64 {
		if a.bytesFrames == 0 {
			return 0
		}
		return float64(a.bytes) / float64(a.bytesFrames)
	}
	top := qs[len(qs)-1]
	v.Highest, v.HighestBytes = top.q, perFrame(top)
	bestWorst := math.Inf(-1)
	for _, a := range qs {
		if a.worst > bestWorst {
			bestWorst, v.Best = a.worst, a.q
		}
		if a.probeErrors > 0 {
			v.SkippedProbeErrors = append(v.SkippedProbeErrors, a.q)
			continue
		}
		if !v.Met && t.meets(a.worst) {
			v.Met, v.Quality, v.Worst, v.Frames, v.ChosenBytes = true, a.q, a.worst, a.frames, perFrame(a)
		}
	}
	if !v.Met {
		v.Worst = bestWorst
		return v, nil
	}
	if v.HighestBytes > 0 {
		v.Saving = 1 - v.ChosenBytes/v.HighestBytes
	}
	return v, nil
}

// WriteQualityVerdict writes the verdict as one line (two when probes failed).
func WriteQualityVerdict(w io.Writer, v QualityVerdict) error {
	score := func(x float64) string {
		if v.Target.Metric == "ssim" {
			return "SSIM " + strconv.FormatFloat(x, 'f', 4, 64)
		}
		return "PSNR " + Decibels(x).String() + " dB"
	}
	var b strings.Builder
	if v.Met {
		fmt.Fprintf(&b, "quality target %s: image_quality %d is the lowest that meets it on every frame (worst %s over %d frames)",
			v.Target, v.Quality, score(v.Worst), v.Frames)
		if v.Quality != v.Highest && v.HighestBytes > 0 {
			fmt.Fprintf(&b, "; %.1f%% fewer bytes per frame than q%d (%.1f KiB vs %.1f KiB)",
				100*v.Saving, v.Highest, v.ChosenBytes/1024, v.HighestBytes/1024)
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "quality target %s: no image quality swept meets it on every frame (best: q%d, worst %s)\n",
			v.Target, v.Best, score(v.Worst))
	}
	if len(v.SkippedProbeErrors) > 0 {
		fmt.Fprintf(&b, "quality target: qualities %v left out: some of their chunk probes failed, so not every frame was scored\n",
			v.SkippedProbeErrors)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
