package report

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// PlotsDir is where WritePlots puts its files inside a results directory.
const PlotsDir = "plots"

// Plot names (file stems). PlotQuality exists only for image-quality sweeps.
const (
	PlotPercentiles = "percentiles" // latency by percentile per strategy, HdrHistogram's 1/(1-q) axis
	PlotFrontier    = "frontier"    // p50 (p90 whisker) against requests per trial, one point per strategy
	PlotQuality     = "quality"     // p50 against image_quality, one line per strategy
)

// PlotFormats are the file formats WritePlots writes, each for every plot.
var PlotFormats = []string{"svg", "png"}

const plotW, plotH = 16 * vg.Centimeter, 10 * vg.Centimeter

// Plots builds the plots of run: PlotPercentiles and PlotFrontier always, PlotQuality for sweeps.
func Plots(run *Run) (map[string]*plot.Plot, error) {
	s, err := Summarize(run, []float64{50, 90})
	if err != nil {
		return nil, err
	}
	out := map[string]*plot.Plot{}
	if out[PlotPercentiles], err = percentilePlot(run); err != nil {
		return nil, err
	}
	if out[PlotFrontier], err = frontierPlot(run); err != nil {
		return nil, err
	}
	if s.Sweep {
		if out[PlotQuality], err = qualityPlot(s); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WritePlots renders the plots of run into dir/plots/<name>.{svg,png} and returns the paths written, sorted.
func WritePlots(run *Run, dir string) ([]string, error) {
	plots, err := Plots(run)
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, PlotsDir)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("write plots: %w", err)
	}
	var paths []string
	for _, name := range slices.Sorted(maps.Keys(plots)) {
		for _, format := range PlotFormats {
			b, err := renderPlot(plots[name], format)
			if err != nil {
				return paths, fmt.Errorf("plot %s: %w", name, err)
			}
			path := filepath.Join(out, name+"."+format)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				return paths, fmt.Errorf("write plots: %w", err)
			}
			paths = append(paths, path)
		}
	}
	return paths, nil
}

// renderPlot draws p in format ("svg", "png").
func renderPlot(p *plot.Plot, format string) ([]byte, error) {
	wt, err := p.WriterTo(plotW, plotH, format)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// runHistograms returns the end-to-end and detection histograms of run by .hlog tag: the .hlog files when the
// run has them, else rebuilt from the trials (a run that crashed before writing them).
func runHistograms(run *Run) map[string]*hdrhistogram.Histogram {
	if len(run.Histograms) > 0 {
		return run.Histograms
	}
	return HistogramsFromTrials(run.Trials)
}

// percentileTicks label x = 1/(1-q) as percentiles: 1 is 0%, 10 is 90%, 100 is 99%, …
func percentileTicks(maxX float64) plot.ConstantTicks {
	var ticks []plot.Tick
	for x, nines := 1.0, 0; x <= maxX*1.0001; x, nines = x*10, nines+1 {
		label := "0%"
		if nines > 0 {
			label = strconv.FormatFloat(100-100/x, 'f', max(nines-2, 0), 64) + "%"
		}
		ticks = append(ticks, plot.Tick{Value: x, Label: label})
	}
	return ticks
}

// percentilePlot draws, per strategy, latency against percentile on HdrHistogram's axis x = 1/(1-q), log
// scale, so the tail gets as much room as the body. The curve ends where the data does, at q = 1-1/n, with
// the max.
func percentilePlot(run *Run) (*plot.Plot, error) {
	hists := runHistograms(run)
	p := plot.New()
	p.Title.Text = "End-to-end latency by percentile (" + run.Meta.RunID + ")"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (s)"
	p.X.Scale = plot.LogScale{}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	maxX := 1000.0 // 99.9% at least, so runs of different sizes share ticks
	entries := 0
	for i, name := range RunStrategies(run) {
		h := hists[name]
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		n := float64(h.TotalCount())
		maxX = max(maxX, math.Pow(10, math.Ceil(math.Log10(n))))
		var xys plotter.XYs
		const steps = 200
		for j := 0; j <= steps; j++ {
			x := math.Pow(n, float64(j)/steps) // 1 .. n, log-spaced
			q := 100 * (1 - 1/x)
			xys = append(xys, plotter.XY{X: x, Y: float64(h.ValueAtPercentile(q)) / 1e9})
		}
		// The last point the axis can show stands for the tail: draw the max there, as the classic
		// percentile output ends with it.
		xys[steps].Y = float64(h.Max()) / 1e9
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("percentile plot %s: %w", name, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(name, line)
		entries++
	}
	p.X.Min, p.X.Max = 1, maxX
	p.X.Tick.Marker = percentileTicks(maxX)
	p.Y.Min = 0
	// Headroom for the legend in the upper left, where the curves start low.
	p.Y.Max *= 1 + 0.07*float64(entries)
	return p, nil
}

// whiskers are y error bars from p50 down 0 and up to p90.
type whiskers struct {
	plotter.XYs
	plotter.YErrors
}

// frontierPlot places each strategy at (requests per trial, p50 latency) with a whisker up to p90: the
// trade-off between load on CVAT and speed, where the lower left corner wins.
func frontierPlot(run *Run) (*plot.Plot, error) {
	// One point per strategy over every quality of a sweep: flatten the qualities.
	flat := &Run{Meta: run.Meta, Trials: slices.Clone(run.Trials)}
	flat.Meta.Config.ImageQualities = nil
	for i := range flat.Trials {
		flat.Trials[i].ImageQuality = 0
	}
	s, err := Summarize(flat, []float64{50, 90})
	if err != nil {
		return nil, err
	}
	p := plot.New()
	p.Title.Text = "Latency against API load (" + run.Meta.RunID + ")"
	p.X.Label.Text = "requests per trial (mean)"
	p.Y.Label.Text = "end-to-end p50 (s), whisker to p90"
	p.Add(plotter.NewGrid())
	for i, row := range s.Rows {
		p50, ok := row.EndToEnd.At(50)
		if !ok {
			continue
		}
		p90, _ := row.EndToEnd.At(90)
		pt := plotter.XYs{{X: row.RequestsMean, Y: p50 / 1000}}
		sc, err := plotter.NewScatter(pt)
		if err != nil {
			return nil, fmt.Errorf("frontier plot %s: %w", row.Strategy, err)
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: plotutil.Color(i), Shape: plotutil.Shape(i), Radius: vg.Points(4)}
		eb, err := plotter.NewYErrorBars(whiskers{pt, plotter.YErrors{{Low: 0, High: (p90 - p50) / 1000}}})
		if err != nil {
			return nil, fmt.Errorf("frontier plot %s: %w", row.Strategy, err)
		}
		eb.Color = plotutil.Color(i)
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: pt, Labels: []string{" " + row.Strategy}})
		if err != nil {
			return nil, fmt.Errorf("frontier plot %s: %w", row.Strategy, err)
		}
		p.Add(eb, sc, labels) // labelled points: no legend needed
	}
	p.X.Min, p.Y.Min = 0, 0
	return p, nil
}

// qualityPlot draws p50 against image_quality, one line per strategy.
func qualityPlot(s *Summary) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "End-to-end p50 by image quality (" + s.RunID + ")"
	p.X.Label.Text = "image_quality"
	p.Y.Label.Text = "end-to-end p50 (s)"
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	var names []string
	points := map[string]plotter.XYs{}
	for _, row := range s.Rows {
		p50, ok := row.EndToEnd.At(50)
		if !ok {
			continue
		}
		if points[row.Strategy] == nil {
			names = append(names, row.Strategy)
		}
		points[row.Strategy] = append(points[row.Strategy], plotter.XY{X: float64(row.ImageQuality), Y: p50 / 1000})
	}
	for i, name := range names {
		line, pts, err := plotter.NewLinePoints(points[name])
		if err != nil {
			return nil, fmt.Errorf("quality plot %s: %w", name, err)
		}
		line.Color = plotutil.Color(i)
		pts.Color, pts.Shape = plotutil.Color(i), plotutil.Shape(i)
		p.Add(line, pts)
		p.Legend.Add(name, line, pts)
	}
	p.Y.Min = 0
	p.Y.Max *= 1 + 0.07*float64(len(names)) // headroom for the legend, upper right
	p.X.Min -= 5
	p.X.Max += 5
	return p, nil
}
