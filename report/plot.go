package report

import (
	"bytes"
	"fmt"
	"image/color"
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
	PlotFidelity    = "fidelity"    // bytes per frame against SSIM, one labelled point per image quality
)

// PlotFormats are the file formats WritePlots writes, each for every plot.
var PlotFormats = []string{"svg", "png"}

const plotW, plotH = 16 * vg.Centimeter, 10 * vg.Centimeter

// Plots builds the plots of run: PlotPercentiles and PlotFrontier always, PlotQuality for sweeps, PlotFidelity
// when the run probed chunks.
func Plots(run *Run) (map[string]*plot.Plot, error) {
	s, err := summarizeLean(run, []float64{50, 90})
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
	if out[PlotBound], err = boundPlot(run); err != nil {
		return nil, err
	}
	if s.Sweep {
		if out[PlotQuality], err = qualityPlot(s); err != nil {
			return nil, err
		}
	}
	if s.Quality != nil {
		if out[PlotFidelity], err = fidelityPlot(s); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// palette gives strategies distinct colours (matplotlib's tab10): plotutil's soft palette has a red and a pink
// that read alike, and repeats after 7.
var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, color.RGBA{0xbc, 0xbd, 0x22, 0xff},
	color.RGBA{0x17, 0xbe, 0xcf, 0xff},
}

// newPlot is a plot with its title (naming the run), axis labels and a grid.
func newPlot(title, runID, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title + " (" + runID + ")"
	p.X.Label.Text, p.Y.Label.Text = x, y
	p.Add(plotter.NewGrid())
	return p
}

// strategyColor is the colour of the i-th strategy of a run, the same in every plot.
func strategyColor(i int) color.Color { return palette[i%len(palette)] }

// legendHeadroom raises the y axis so that a legend of entries lines in a top corner sits above everything
// drawn below the old maximum: each line takes about legendLine of the plot's height.
func legendHeadroom(p *plot.Plot, entries int) {
	const legendLine = 0.055
	f := min(0.6, legendLine*float64(entries+1))
	p.Y.Max /= 1 - f
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
	p := newPlot("End-to-end latency by percentile", run.Meta.RunID, "percentile", "latency (s)")
	p.X.Scale = plot.LogScale{}
	p.Legend.Top, p.Legend.Left = true, true
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
		line.Color = strategyColor(i)
		line.Width = vg.Points(1.5)
		line.Dashes = plotutil.Dashes(i / len(palette)) // a second round of colours is dashed
		p.Add(line)
		p.Legend.Add(name, line)
		entries++
	}
	p.X.Min, p.X.Max = 1, maxX
	p.X.Tick.Marker = percentileTicks(maxX)
	p.Y.Min = 0
	legendHeadroom(p, entries) // the legend sits above every curve
	return p, nil
}

// whiskers are y error bars from p50 down 0 and up to p90.
type whiskers struct {
	plotter.XYs
	plotter.YErrors
}

// frontierPlot places each strategy at (requests per trial, p50 latency) with a whisker up to p90: the
// trade-off between load on CVAT and speed, where the lower left corner wins. Points are told apart by colour
// and shape in a legend above them: text beside the points overlapped where strategies lie close.
func frontierPlot(run *Run) (*plot.Plot, error) {
	// One point per strategy over every cell of a sweep.
	s, err := summarizeLean(flattenCells(run), []float64{50, 90})
	if err != nil {
		return nil, err
	}
	p := newPlot("Latency against API load", run.Meta.RunID, "requests per trial (mean)", "end-to-end p50 (s), whisker to p90")
	p.Legend.Top, p.Legend.Left = true, true
	entries := 0
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
		sc.GlyphStyle = draw.GlyphStyle{Color: strategyColor(i), Shape: plotutil.Shape(i), Radius: vg.Points(4)}
		eb, err := plotter.NewYErrorBars(whiskers{pt, plotter.YErrors{{Low: 0, High: (p90 - p50) / 1000}}})
		if err != nil {
			return nil, fmt.Errorf("frontier plot %s: %w", row.Strategy, err)
		}
		eb.Color = strategyColor(i)
		p.Add(eb, sc)
		p.Legend.Add(row.Strategy, sc)
		entries++
	}
	p.X.Min, p.Y.Min = 0, 0
	p.X.Max *= 1.05 // the rightmost glyph whole
	legendHeadroom(p, entries)
	return p, nil
}

// qualityPlot draws p50 against image_quality, one line per strategy.
func qualityPlot(s *Summary) (*plot.Plot, error) {
	p := newPlot("End-to-end p50 by image quality", s.RunID, "image_quality", "end-to-end p50 (s)")
	p.Legend.Top = true
	var names []string
	points := map[string]plotter.XYs{}
	for _, row := range s.Rows {
		p50, ok := row.EndToEnd.At(50)
		if !ok {
			continue
		}
		name := row.Strategy // one line per strategy, and per segment size in a segment-size sweep
		if s.SegmentSweep {
			name += " s" + strconv.Itoa(row.SegmentSize)
		}
		if points[name] == nil {
			names = append(names, name)
		}
		points[name] = append(points[name], plotter.XY{X: float64(row.ImageQuality), Y: p50 / 1000})
	}
	for i, name := range names {
		line, pts, err := plotter.NewLinePoints(points[name])
		if err != nil {
			return nil, fmt.Errorf("quality plot %s: %w", name, err)
		}
		line.Color = strategyColor(i)
		pts.Color, pts.Shape = strategyColor(i), plotutil.Shape(i)
		p.Add(line, pts)
		p.Legend.Add(name, line, pts)
	}
	p.Y.Min = 0
	legendHeadroom(p, len(names)) // the legend, upper right, above every line
	p.X.Min -= 5
	p.X.Max += 5
	return p, nil
}

// fidelityPlot draws, per image quality, the median bytes per frame of the probed chunks against the median
// SSIM of their frames, with a whisker down to the worst frame: the curve a user picks a quality on.
func fidelityPlot(s *Summary) (*plot.Plot, error) {
	p := newPlot("Chunk size against fidelity by image quality", s.RunID, "compressed bytes per frame (KiB, median)",
		"SSIM on luma (median; whisker to the worst frame)")
	var pts plotter.XYs
	var errs plotter.YErrors
	var labels []string
	for _, row := range s.Quality.Rows {
		if row.BytesPerFrameP50 == nil || row.SSIMP50 == nil {
			continue
		}
		pts = append(pts, plotter.XY{X: *row.BytesPerFrameP50 / 1024, Y: *row.SSIMP50})
		errs = append(errs, struct{ Low, High float64 }{Low: *row.SSIMP50 - *row.SSIMWorst, High: 0})
		label := " q" + strconv.Itoa(row.ImageQuality)
		if s.Quality.SegmentSweep {
			label += " s" + strconv.Itoa(row.SegmentSize)
		}
		labels = append(labels, label)
	}
	if len(pts) == 0 {
		return p, nil
	}
	line, sc, err := plotter.NewLinePoints(pts)
	if err != nil {
		return nil, fmt.Errorf("fidelity plot: %w", err)
	}
	line.Color, sc.Color, sc.Shape = strategyColor(0), strategyColor(0), draw.CircleGlyph{}
	eb, err := plotter.NewYErrorBars(whiskers{pts, errs})
	if err != nil {
		return nil, fmt.Errorf("fidelity plot: %w", err)
	}
	eb.Color = strategyColor(0)
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: labels})
	if err != nil {
		return nil, fmt.Errorf("fidelity plot: %w", err)
	}
	p.Add(line, eb, sc, lb)
	p.X.Min = 0
	p.X.Max *= 1.1 // room for the last label
	p.Y.Max = min(1, p.Y.Max+0.02)
	return p, nil
}
