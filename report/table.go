package report

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// A Reporter writes one rendering of a finished run.
type Reporter func(w io.Writer) error

// Table renders s as an ASCII table, or a GitHub markdown table, one code path for both; for a sweep, a pivot
// of p50 by image quality; then a line per strategy with errors by class and one line on what the detection
// column rests on.
func Table(s *Summary, markdown bool) Reporter {
	return func(w io.Writer) error {
		r := newRenderer(markdown)
		header := tableHeader(s)
		align := tw.Alignment{tw.AlignLeft}
		for len(align) < len(header) {
			align = append(align, tw.AlignRight)
		}
		t := tablewriter.NewTable(w, tablewriter.WithRenderer(r),
			tablewriter.WithHeaderAutoFormat(tw.Off),
			tablewriter.WithAlignment(align))
		t.Header(header)
		for _, row := range s.Rows {
			cells := tableCells(s, row) // fresh slice per row: Append keeps it
			cells[0] = cell(cells[0], markdown)
			if err := t.Append(cells); err != nil {
				return fmt.Errorf("table row %s: %w", row.Strategy, err)
			}
		}
		if err := t.Render(); err != nil {
			return fmt.Errorf("render table: %w", err)
		}
		if s.Sweep {
			if err := pivot(w, s, markdown); err != nil {
				return err
			}
		}
		if err := qualityTable(w, s, markdown); err != nil {
			return err
		}
		if err := footer(w, s, markdown); err != nil {
			return err
		}
		return seedTable(w, s, markdown)
	}
}

// tableHeader is the header of the human tables (ASCII, markdown, HTML): times in seconds.
func tableHeader(s *Summary) []string {
	header := []string{"strategy"}
	if s.Sweep {
		header = append(header, "quality")
	}
	if s.SegmentSweep {
		header = append(header, "segment")
	}
	header = append(header, "n", "err")
	for _, p := range s.Percentiles {
		header = append(header, percentileName(p)+"_s")
	}
	header = append(header, "max_s", "detect_p50_s", "detect_p99_s", "detect_mean_s", "vs_bound_s", "req_mean", "req_p50")
	if s.Batch > 0 {
		header = append(header, "batches", "makespan_p50_s", "makespan_max_s")
	}
	return header
}

// tableCells is one row of the human tables, unescaped, in tableHeader's order.
func tableCells(s *Summary, row Row) []string {
	cells := []string{row.Strategy}
	if s.Sweep {
		cells = append(cells, strconv.Itoa(row.ImageQuality))
	}
	if s.SegmentSweep {
		cells = append(cells, strconv.Itoa(row.SegmentSize))
	}
	cells = append(cells, strconv.Itoa(row.N), strconv.Itoa(row.WaitErrors()))
	for _, p := range s.Percentiles {
		cells = append(cells, secs(row.EndToEnd.At(p)))
	}
	cells = append(cells, secs(row.EndToEnd.MaxMs, row.EndToEnd.N > 0),
		secs(row.Detection.At(50)), secs(row.Detection.At(99)), secsPtr(row.DetectionMeanMs), signedSecsPtr(row.BoundGapMs))
	if row.OK > 0 {
		digits := 1
		if row.RequestsMean < 1 {
			digits = 3 // a project-level strategy's share: well under one request per task
		}
		cells = append(cells, strconv.FormatFloat(row.RequestsMean, 'f', digits, 64), strconv.Itoa(row.RequestsP50))
	} else {
		cells = append(cells, "n/a", "n/a")
	}
	if s.Batch > 0 {
		cells = append(cells, strconv.Itoa(row.Batches), secs(row.MakespanP50Ms, row.Batches > 0), secs(row.MakespanMaxMs, row.Batches > 0))
	}
	return cells
}

// pivot renders one percentile of a sweep (p50, or the first one shown when p50 is not) as one row per
// strategy and one column per cell (image quality, and segment size in a segment-size sweep), the shape in
// which a quality effect is read at a glance.
func pivot(w io.Writer, s *Summary, markdown bool) error {
	p := 50.0
	if !slices.Contains(s.Percentiles, p) {
		p = s.Percentiles[0]
	}
	pname := "p" + strconv.FormatFloat(p, 'f', -1, 64)
	type col struct{ quality, segment int }
	var strategies []string
	var cols []col
	vals := map[string]map[col]string{}
	for _, row := range s.Rows {
		if vals[row.Strategy] == nil {
			vals[row.Strategy] = map[col]string{}
			strategies = append(strategies, row.Strategy)
		}
		c := col{row.ImageQuality, row.SegmentSize}
		if !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
		vals[row.Strategy][c] = secs(row.EndToEnd.At(p))
	}
	slices.SortFunc(cols, func(a, b col) int {
		return cmp.Or(cmp.Compare(a.quality, b.quality), cmp.Compare(a.segment, b.segment))
	})
	header := []string{"strategy"}
	align := tw.Alignment{tw.AlignLeft}
	for _, c := range cols {
		name := "q" + strconv.Itoa(c.quality)
		if s.SegmentSweep {
			name += "_s" + strconv.Itoa(c.segment)
		}
		header = append(header, name+"_"+pname+"_s")
		align = append(align, tw.AlignRight)
	}
	by := "image quality"
	if s.SegmentSweep {
		by = "image quality (q) and segment size (s)"
	}
	caption := "end-to-end " + pname + "_s by " + by + ":\n"
	if markdown {
		caption = "\n" + caption + "\n" // a markdown table needs blank lines around it
	}
	if _, err := io.WriteString(w, caption); err != nil {
		return err
	}
	t := tablewriter.NewTable(w, tablewriter.WithRenderer(newRenderer(markdown)),
		tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithAlignment(align))
	t.Header(header)
	for _, name := range strategies {
		cells := []string{cell(name, markdown)}
		for _, c := range cols {
			cells = append(cells, cmp.Or(vals[name][c], "-")) // "-": this strategy did not run in this cell
		}
		if err := t.Append(cells); err != nil {
			return fmt.Errorf("pivot row %s: %w", name, err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("render pivot: %w", err)
	}
	return nil
}

func newRenderer(markdown bool) tw.Renderer {
	if markdown {
		return renderer.NewMarkdown()
	}
	return renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleASCII)})
}

// footer notes errors by class and the source of detection times. In markdown the notes are a list after a
// blank line: GitHub would otherwise read a line that follows a table as one more row.
func footer(w io.Writer, s *Summary, markdown bool) error {
	var b strings.Builder
	classes := func(m map[string]int) string {
		var parts []string
		for _, class := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, fmt.Sprintf("%s=%d", class, m[class]))
		}
		return strings.Join(parts, " ")
	}
	for _, row := range s.Rows {
		if len(row.ErrorsByClass) > 0 {
			fmt.Fprintf(&b, "errors %s: %s\n", row.Strategy+cellName(s, row), classes(row.ErrorsByClass))
		}
	}
	var setup []string
	total := 0
	for _, row := range s.Rows {
		if row.SetupErrors > 0 {
			setup = append(setup, fmt.Sprintf("%s %s", row.Strategy+cellName(s, row), classes(row.SetupErrorsByClass)))
			total += row.SetupErrors
		}
	}
	if total > 0 {
		fmt.Fprintf(&b, "setup failures: %d trials failed creating or uploading, before any strategy ran (in n, not in err): %s\n",
			total, strings.Join(setup, "; "))
	}
	if s.Dropped > 0 {
		fmt.Fprintf(&b, "dropped: %d trials were due while %d were in flight and never started (open loop; the server "+
			"did not keep up with the rate, see --max-in-flight); they are in no row\n", s.Dropped, s.MaxInFlight)
	}
	if s.Abandoned {
		fmt.Fprintf(&b, "run abandoned by a second interrupt: no cleanup ran, what it created may remain on the server "+
			"(cvatbench cleanup removes it)\n")
	}
	if s.Interrupted || s.Canceled > 0 {
		fmt.Fprintf(&b, "run interrupted: %d trials canceled by the interruption are in no row\n", s.Canceled)
	}
	switch {
	case s.VisibleSources["server_finished_date"] > 0:
		fmt.Fprintf(&b, "detect_*: jobs-visible time estimated from the request's finished_date (clock offset ±%.1f ms at worst); "+
			"end-to-end includes the upload\n", s.OffsetMaxErrorMs)
	case s.VisibleSources["emulator"] > 0:
		fmt.Fprintf(&b, "detect_*: jobs-visible time from the emulator's ground truth; numbers describe the emulator profile, not a real CVAT\n")
	}
	if s.WhatIf != "" {
		fmt.Fprintf(&b, "what-if %s: the emulator ran a behaviour no CVAT release has (every task's job rows listed from "+
			"the upload's 202 on), so every strategy that lists jobs saw them early; compare prealloc with real strategies "+
			"from a run without --sim-what-if\n", s.WhatIf)
	}
	b.WriteString(boundNotes(s))
	if s.Server != "" {
		fmt.Fprintf(&b, "measured on: %s\n", s.Server)
	}
	if len(s.FaultsInjected) > 0 {
		parts := make([]string, 0, len(s.FaultsInjected))
		for _, k := range slices.Sorted(maps.Keys(s.FaultsInjected)) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, s.FaultsInjected[k]))
		}
		fmt.Fprintf(&b, "faults injected by the emulator: %s\n", strings.Join(parts, " "))
	}
	notes := b.String()
	if markdown && notes != "" {
		notes = "\n- " + strings.ReplaceAll(strings.TrimSuffix(notes, "\n"), "\n", "\n- ") + "\n"
	}
	_, err := io.WriteString(w, notes)
	return err
}

// secsPtr is secs of an optional value.
func secsPtr(ms *float64) string {
	if ms == nil {
		return secs(0, false)
	}
	return secs(*ms, true)
}

// signedSecsPtr is secsPtr with a sign: above (+) or below (−) a reference.
func signedSecsPtr(ms *float64) string {
	if ms == nil {
		return secs(0, false)
	}
	v := strconv.FormatFloat(*ms/1000, 'f', 3, 64)
	if *ms >= 0 {
		v = "+" + v
	}
	return v
}

// secs formats milliseconds as seconds with millisecond precision, "n/a" for an empty distribution.
func secs(ms float64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return strconv.FormatFloat(ms/1000, 'f', 3, 64)
}

// cell escapes the markdown column separator; names are validated, but the table must not break on them.
func cell(s string, markdown bool) string {
	if markdown {
		return strings.ReplaceAll(s, "|", `\|`)
	}
	return s
}
