package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cvatbench/cvatbench/bench/record"
)

// HTMLFile is the name of the self-contained report WriteHTML puts in a results directory.
const HTMLFile = "report.html"

// HTML renders run as one self-contained page: a summary of meta.json, the table (with the options' percentiles),
// its notes, and the plots as inline SVG. It loads nothing: no scripts, stylesheets, fonts or images from
// anywhere, so it can be mailed or attached to a ticket as is.
// countResult counts the trials of one result.
func countResult(trials []record.Trial, result string) int {
	n := 0
	for _, t := range trials {
		if t.Result == result {
			n++
		}
	}
	return n
}

func HTML(run *Run, o Options) Reporter {
	return func(w io.Writer) error {
		o = o.normalized()
		if err := ValidatePercentiles(o.Percentiles); err != nil {
			return err
		}
		s, err := Summarize(run, o.Percentiles)
		if err != nil {
			return err
		}
		plots, err := Plots(run)
		if err != nil {
			return err
		}
		var figures []htmlFigure
		for _, name := range []string{PlotPercentiles, PlotFrontier, PlotBound, PlotQuality, PlotFidelity} {
			p, ok := plots[name]
			if !ok {
				continue
			}
			svg, err := renderPlot(p, "svg")
			if err != nil {
				return fmt.Errorf("plot %s: %w", name, err)
			}
			figures = append(figures, htmlFigure{Name: name, SVG: template.HTML(inlineSVG(svg))}) //nolint:gosec // our own plot
		}
		var notes bytes.Buffer
		if err := footer(&notes, s, false); err != nil {
			return err
		}
		page := htmlPage{
			Title:   "cvatbench " + run.Meta.RunID,
			Meta:    metaRows(run),
			Header:  tableHeader(s),
			Notes:   strings.Split(strings.TrimSpace(notes.String()), "\n"),
			Figures: figures,
		}
		if len(page.Notes) == 1 && page.Notes[0] == "" {
			page.Notes = nil
		}
		if seed := SeedTable(s); showSeedTable(seed) {
			page.SeedHeader, page.SeedNotes = seedHeader, seedNotes(s, seed)
			for _, sr := range seed {
				page.SeedRows = append(page.SeedRows, seedCells(s, sr))
			}
		}
		for _, row := range s.Rows {
			page.Rows = append(page.Rows, tableCells(s, row))
		}
		if q := s.Quality; q != nil {
			page.QualityCaption = strings.TrimSuffix(strings.TrimSpace(qualityCaption(q)), ":")
			page.QualityHeader = qualityHeader(q)
			for _, row := range q.Rows {
				page.QualityRows = append(page.QualityRows, qualityCells(q, row))
			}
		}
		var b bytes.Buffer
		if err := htmlTemplate.Execute(&b, page); err != nil {
			return fmt.Errorf("render html: %w", err)
		}
		_, err = w.Write(b.Bytes())
		return err
	}
}

// WriteHTML writes HTML(run, o) to dir/report.html and returns its path.
func WriteHTML(run *Run, dir string, o Options) (string, error) {
	var b bytes.Buffer
	if err := HTML(run, o)(&b); err != nil {
		return "", err
	}
	path := filepath.Join(dir, HTMLFile)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("write html: %w", err)
	}
	return path, nil
}

var svgProlog = regexp.MustCompile(`(?s)\A.*?(<svg[\s>])`)

// inlineSVG drops what precedes the <svg> element (XML declaration, comments): inside HTML it is noise.
func inlineSVG(b []byte) string {
	return svgProlog.ReplaceAllString(string(b), "$1")
}

type htmlFigure struct {
	Name string
	SVG  template.HTML
}

type htmlPage struct {
	Title   string
	Meta    [][2]string
	Header  []string
	Rows    [][]string
	Notes   []string
	Figures []htmlFigure
	// The per-quality table of the chunk probes, when the run has them.
	QualityCaption string
	QualityHeader  []string
	QualityRows    [][]string
	// The seed table (seedtable.go), when the run covers two approaches or more.
	SeedHeader []string
	SeedRows   [][]string
	SeedNotes  []string
}

func joinInts(vs []int) string {
	var out []string
	for _, v := range vs {
		out = append(out, strconv.Itoa(v))
	}
	return strings.Join(out, ", ")
}

// metaRows are the facts of meta.json a reader needs to trust or reproduce the numbers.
func metaRows(run *Run) [][2]string {
	m, c := run.Meta, run.Meta.Config
	rows := [][2]string{
		{"run", m.RunID},
		{"target", m.Target},
	}
	add := func(k, v string) {
		if v != "" {
			rows = append(rows, [2]string{k, v})
		}
	}
	add("emulator profile", m.EmulatorProfile)
	add("server version", m.ServerVersion)
	add("tool", strings.TrimSpace(m.ToolVersion+" (commit "+m.ToolCommit+")"))
	add("started", m.StartedAt.UTC().Format(time.RFC3339))
	if m.FinishedAt != nil {
		add("finished", m.FinishedAt.UTC().Format(time.RFC3339)+" ("+m.FinishedAt.Sub(m.StartedAt).Round(time.Second).String()+")")
	} else {
		add("finished", "no (interrupted or crashed)")
	}
	add("trials", fmt.Sprintf("%d recorded of %d planned", len(run.Trials), m.TrialsPlanned))
	load := m.Loop
	if c.Rate > 0 {
		load += fmt.Sprintf(", %g trials/s", c.Rate)
	} else if c.Concurrency > 0 {
		load += fmt.Sprintf(", concurrency %d", c.Concurrency)
	}
	add("loop", load)
	add("strategies", strings.Join(c.Strategies, ", "))
	add("workload", fmt.Sprintf("%d tasks per strategy, quality and segment size; %d images %s %s; image_quality %s; segment_size %s; upload %s",
		c.TasksPerStrategy, c.Images, c.ImageSize, c.ImageFormat, joinInts(c.ImageQualities), joinInts(c.SegmentSizes), c.UploadMode))
	if c.Chunks != "" {
		add("chunk probe", c.Chunks)
	}
	add("seed", strconv.FormatInt(m.Seed, 10))
	add("clock offset", fmt.Sprintf("±%.1f ms at worst, ±%.1f ms typical (%d estimates; ground truth: %t)",
		m.ClockOffset.MaxErrorMs, m.ClockOffset.MedianErrorMs, m.ClockOffset.Estimates, m.ClockOffset.GroundTruth))
	if m.Interrupted {
		add("interrupted", "yes")
	}
	if m.Abandoned {
		add("abandoned", "a second interrupt ended the process before cleanup: what the run created may remain")
	}
	if n := countResult(run.Trials, record.ResultDropped); n > 0 {
		add("dropped", fmt.Sprintf("%d trials due while %d were in flight, never started (open loop: the server did not keep up)",
			n, c.InFlightLimit()))
	}
	if run.Truncated {
		add("trials.jsonl", "last line cut short (crash) and skipped")
	}
	if len(m.CleanupErrors) > 0 {
		add("cleanup errors", strings.Join(m.CleanupErrors, "; "))
	}
	return slices.Clip(rows)
}

var htmlTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 72em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; }
figure { margin: 1.5em 0; }
figure svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<dl class="meta">
{{- range .Meta}}
<dt>{{index . 0}}</dt><dd>{{index . 1}}</dd>
{{- end}}
</dl>
<h2>Summary</h2>
<table>
<thead><tr>{{range $i, $h := .Header}}<th{{if $i}} class="num"{{end}}>{{$h}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
<tr>{{range $i, $c := .}}<td{{if $i}} class="num"{{end}}>{{$c}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
{{- range .Notes}}
<p>{{.}}</p>
{{- end}}
{{- if .SeedRows}}
<h2>The four approaches of the cvat-ai/cvat#9073 write-up, measured</h2>
<table>
<thead><tr>{{range .SeedHeader}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .SeedRows}}
<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
{{- range .SeedNotes}}
<p>{{.}}</p>
{{- end}}
{{- end}}
{{- if .QualityRows}}
<h2>Image quality</h2>
<p>{{.QualityCaption}}</p>
<table>
<thead><tr>{{range .QualityHeader}}<th class="num">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .QualityRows}}
<tr>{{range .}}<td class="num">{{.}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- if .Figures}}
<h2>Plots</h2>
{{- range .Figures}}
<figure id="{{.Name}}">
{{.SVG}}
</figure>
{{- end}}
{{- end}}
</body>
</html>
`))
