package report

import (
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

// Table renders s as an ASCII table, or a GitHub markdown table, one code path for both, followed by a line per
// strategy with errors by class and one line on what the detection column rests on.
func Table(s *Summary, markdown bool) Reporter {
	return func(w io.Writer) error {
		var r tw.Renderer = renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleASCII)})
		if markdown {
			r = renderer.NewMarkdown()
		}
		header := []string{"strategy"}
		align := tw.Alignment{tw.AlignLeft}
		if s.Sweep {
			header = append(header, "quality")
		}
		header = append(header, "n", "err")
		for _, p := range s.Percentiles {
			header = append(header, "p"+strconv.FormatFloat(p, 'f', -1, 64)+"_s")
		}
		header = append(header, "max_s", "detect_p50_s", "detect_p99_s", "req_mean", "req_p50")
		for len(align) < len(header) {
			align = append(align, tw.AlignRight)
		}
		t := tablewriter.NewTable(w, tablewriter.WithRenderer(r),
			tablewriter.WithHeaderAutoFormat(tw.Off),
			tablewriter.WithAlignment(align))
		t.Header(header)
		for _, row := range s.Rows {
			cells := []string{cell(row.Strategy, markdown)} // fresh slice per row: Append keeps it
			if s.Sweep {
				cells = append(cells, strconv.Itoa(row.ImageQuality))
			}
			cells = append(cells, strconv.Itoa(row.N), strconv.Itoa(row.Errors))
			for _, p := range s.Percentiles {
				cells = append(cells, secs(row.EndToEnd.At(p)))
			}
			cells = append(cells, secs(row.EndToEnd.MaxMs, row.EndToEnd.N > 0),
				secs(row.Detection.At(50)), secs(row.Detection.At(99)))
			if row.OK > 0 {
				cells = append(cells, strconv.FormatFloat(row.RequestsMean, 'f', 1, 64), strconv.Itoa(row.RequestsP50))
			} else {
				cells = append(cells, "n/a", "n/a")
			}
			if err := t.Append(cells); err != nil {
				return fmt.Errorf("table row %s: %w", row.Strategy, err)
			}
		}
		if err := t.Render(); err != nil {
			return fmt.Errorf("render table: %w", err)
		}
		return footer(w, s)
	}
}

func footer(w io.Writer, s *Summary) error {
	var b strings.Builder
	for _, row := range s.Rows {
		if len(row.ErrorsByClass) == 0 {
			continue
		}
		name := row.Strategy
		if s.Sweep {
			name += " q" + strconv.Itoa(row.ImageQuality)
		}
		var parts []string
		for _, class := range slices.Sorted(maps.Keys(row.ErrorsByClass)) {
			parts = append(parts, fmt.Sprintf("%s=%d", class, row.ErrorsByClass[class]))
		}
		fmt.Fprintf(&b, "errors %s: %s\n", name, strings.Join(parts, " "))
	}
	switch {
	case s.VisibleSources["server_finished_date"] > 0:
		fmt.Fprintf(&b, "detect_*: jobs-visible time estimated from the request's finished_date (clock offset ±%.1f ms at worst); "+
			"end-to-end includes the upload\n", s.OffsetMaxErrorMs)
	case s.VisibleSources["emulator"] > 0:
		fmt.Fprintf(&b, "detect_*: jobs-visible time from the emulator's ground truth; numbers describe the emulator profile, not a real CVAT\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
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
