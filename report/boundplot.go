package report

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// PlotBound is the frontier of mean detection delay against mean requests with the optimal-polling bound.
const PlotBound = "bound"

// boundPlot places each strategy at (mean requests, mean detection delay), the figures the bound is in, and
// draws the bound as a line: the least mean delay any fixed schedule of jobs listings reaches at each mean
// listing count, over the run's own upload→visible times. Both axes are logarithmic: a run holds strategies
// a millisecond and seconds from the jobs, and one request and hundreds. In a sweep every cell's trials are
// pooled, as in the frontier plot; the table's vs_bound is per cell.
func boundPlot(run *Run) (*plot.Plot, error) {
	flat := flattenCells(run)
	s, err := Summarize(flat, []float64{50})
	if err != nil {
		return nil, err
	}
	p := newPlot("Detection against API load, with the optimal-polling bound", run.Meta.RunID,
		"requests per trial (mean, log)", "detection delay (mean, s, log)")
	p.Legend.Top, p.Legend.Left = true, false
	const floorS = 0.001 // log axis: a mean below 1 ms sits on the floor
	maxX, entries := 1.0, 0
	for i, row := range s.Rows {
		if row.DetectionMeanMs == nil || row.RequestsMean <= 0 {
			continue
		}
		pt := plotter.XYs{{X: row.RequestsMean, Y: max(*row.DetectionMeanMs/1000, floorS)}}
		sc, err := plotter.NewScatter(pt)
		if err != nil {
			return nil, fmt.Errorf("bound plot %s: %w", row.Strategy, err)
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: strategyColor(i), Shape: plotutil.Shape(i), Radius: vg.Points(4)}
		p.Add(sc)
		p.Legend.Add(row.Strategy, sc)
		maxX = max(maxX, row.RequestsMean)
		entries++
	}
	if len(s.Bounds) == 1 && len(s.Bounds[0].Bound.Points) > 0 {
		b := s.Bounds[0].Bound
		var line plotter.XYs
		for _, v := range b.Points {
			if v.Requests > maxX*1.5 {
				break
			}
			line = append(line, plotter.XY{X: v.Requests, Y: max(v.DelayMs/1000, floorS)})
		}
		if d, ok := b.At(maxX * 1.5); ok && (len(line) == 0 || line[len(line)-1].X < maxX*1.5) {
			line = append(line, plotter.XY{X: maxX * 1.5, Y: max(d/1000, floorS)})
		}
		l, err := plotter.NewLine(line)
		if err != nil {
			return nil, fmt.Errorf("bound plot: %w", err)
		}
		l.Color, l.Width, l.Dashes = palette[7], vg.Points(1.5), []vg.Length{vg.Points(4), vg.Points(2)}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("optimal fixed schedule (%d trials)", b.N), l)
	}
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.X.Min = min(p.X.Min, 0.8)
	p.X.Max = math.Max(p.X.Max*1.2, 2)
	p.Y.Min = max(p.Y.Min/1.5, floorS/1.5)
	p.Y.Max *= 1.5
	// Headroom for the legend above everything drawn, on the log axis: legendHeadroom's share of the height.
	const legendLine = 0.04 // at the 8 pt legend text below
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	f := min(0.5, legendLine*float64(entries+2))
	p.Y.Max = p.Y.Min * math.Pow(p.Y.Max/p.Y.Min, 1/(1-f))
	return p, nil
}

// flattenCells is run with every trial's image quality and segment size cleared: one row per strategy.
func flattenCells(run *Run) *Run {
	flat := &Run{Meta: run.Meta, Trials: slices.Clone(run.Trials)}
	flat.Meta.Config.ImageQualities, flat.Meta.Config.SegmentSizes = nil, nil
	for i := range flat.Trials {
		flat.Trials[i].ImageQuality, flat.Trials[i].SegmentSize = 0, 0
	}
	return flat
}
