package report

import (
	"fmt"
	"io"
	"strconv"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// qualityHeader and qualityCells lay out the per-quality table of the human renderings (ASCII, markdown,
// HTML): bytes in KiB per frame, latencies in seconds, PSNR in dB.
func qualityHeader(q *QualitySummary) []string {
	if q.SegmentSweep {
		return append([]string{"quality", "segment"}, qualityHeaderTail...)
	}
	return append([]string{"quality"}, qualityHeaderTail...)
}

var qualityHeaderTail = []string{"trials", "frames", "kib_per_frame_p50", "cold_p50_s", "cold_p90_s", "warm_p50_s",
	"warm_p90_s", "psnr_p50_db", "psnr_worst_db", "ssim_p50", "ssim_worst", "creation_p50_s", "probe_err"}

func qualityCells(q *QualitySummary, row QualityRow) []string {
	opt := func(v *float64, f func(float64) string) string {
		if v == nil {
			return "n/a"
		}
		return f(*v)
	}
	kib := func(v float64) string { return strconv.FormatFloat(v/1024, 'f', 1, 64) }
	sec := func(v float64) string { return strconv.FormatFloat(v/1000, 'f', 3, 64) }
	ssim := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	db := func(v *Decibels) string {
		if v == nil {
			return "n/a"
		}
		return v.String()
	}
	cells := []string{strconv.Itoa(row.ImageQuality)}
	if q.SegmentSweep {
		cells = append(cells, strconv.Itoa(row.SegmentSize))
	}
	return append(cells, strconv.Itoa(row.Trials), strconv.Itoa(row.Frames),
		opt(row.BytesPerFrameP50, kib), opt(row.ColdP50Ms, sec), opt(row.ColdP90Ms, sec), opt(row.WarmP50Ms, sec),
		opt(row.WarmP90Ms, sec), db(row.PSNRP50), db(row.PSNRWorst), opt(row.SSIMP50, ssim), opt(row.SSIMWorst, ssim),
		opt(row.CreationP50Ms, sec), strconv.Itoa(row.ProbeErrors))
}

// qualityCaption says what the per-quality table measured.
func qualityCaption(q *QualitySummary) string {
	what := "chunk 0 of each task's second job, or of its only one, which the task preview built during creation"
	if q.ChunkMode == record.ChunksAll {
		what = "every chunk of every job; cold and warm of the second job's chunk 0"
	}
	return fmt.Sprintf("compressed chunks by image quality (%s; cold: first read, warm: the next; "+
		"PSNR/SSIM on luma against the originals; creation: create sent -> jobs visible; cache: %s):\n", what, q.CacheMode)
}

// qualityTable renders s.Quality, if the run probed chunks.
func qualityTable(w io.Writer, s *Summary, markdown bool) error {
	q := s.Quality
	if q == nil {
		return nil
	}
	caption := qualityCaption(q)
	if markdown {
		caption = "\n" + caption + "\n"
	}
	if _, err := io.WriteString(w, caption); err != nil {
		return err
	}
	header := qualityHeader(q)
	align := tw.Alignment{}
	for range header {
		align = append(align, tw.AlignRight)
	}
	t := tablewriter.NewTable(w, tablewriter.WithRenderer(newRenderer(markdown)),
		tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithAlignment(align))
	t.Header(header)
	for _, row := range q.Rows {
		if err := t.Append(qualityCells(q, row)); err != nil {
			return fmt.Errorf("quality row %d: %w", row.ImageQuality, err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("render quality table: %w", err)
	}
	return nil
}
