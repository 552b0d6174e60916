package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Output formats of Render.
const (
	FormatTable    = "table"    // ASCII grid, what `cvatbench run` prints
	FormatMarkdown = "markdown" // GitHub markdown
	FormatCSV      = "csv"      // one header line, one line per row; times in ms
	FormatJSON     = "json"     // one object; rows with the CSV's columns; times in ms
)

// Formats lists the output formats, in the order --help shows them.
var Formats = []string{FormatTable, FormatMarkdown, FormatCSV, FormatJSON}

// Options choose how a run is rendered. The zero value is what `cvatbench run` prints.
type Options struct {
	Format      string    // one of Formats; "" means FormatTable
	Percentiles []float64 // end-to-end percentiles; nil means DefaultPercentiles
}

func (o Options) normalized() Options {
	if o.Format == "" {
		o.Format = FormatTable
	}
	if o.Percentiles == nil {
		o.Percentiles = DefaultPercentiles
	}
	return o
}

// Validate reports every problem of o at once.
func (o Options) Validate() error {
	o = o.normalized()
	var errs []error
	if !slices.Contains(Formats, o.Format) {
		errs = append(errs, fmt.Errorf("unknown format %q (valid: %s)", o.Format, strings.Join(Formats, ", ")))
	}
	if err := ValidatePercentiles(o.Percentiles); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Render summarises run and writes it in o.Format. `cvatbench run` and `cvatbench report` both print through
// it, so a saved run re-renders to the bytes that were printed when it finished. It returns the summary it
// rendered.
func Render(w io.Writer, run *Run, o Options) (*Summary, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.normalized()
	s, err := Summarize(run, o.Percentiles)
	if err != nil {
		return nil, err
	}
	var r Reporter
	switch o.Format {
	case FormatTable:
		r = Table(s, false)
	case FormatMarkdown:
		r = Table(s, true)
	case FormatCSV:
		r = CSV(s)
	case FormatJSON:
		r = JSON(s)
	}
	return s, r(w)
}

// field is one column of a machine-readable row; a nil value is "not available" (empty in CSV, null in JSON).
type field struct {
	name  string
	value any
}

// fields lays out a row for CSV and JSON, one definition for both. Times are milliseconds rounded to the
// microsecond (HdrHistogram keeps 3 significant digits anyway), and every time column ends in _ms.
func fields(s *Summary, row Row) []field {
	ms := func(v float64, ok bool) any {
		if !ok {
			return nil
		}
		return math.Round(v*1000) / 1000
	}
	fs := []field{
		{"strategy", row.Strategy},
		{"image_quality", row.ImageQuality},
	}
	if s.SegmentSweep {
		fs = append(fs, field{"segment_size", row.SegmentSize})
	}
	fs = append(fs, []field{
		{"n", row.N},
		{"ok", row.OK},
		{"errors", row.Errors},
		{"setup_errors", row.SetupErrors},
		{"wait_errors", row.WaitErrors()},
		{"error_rate", ratio(row.WaitErrors(), row.N-row.SetupErrors)},
		{"error_classes", errorClasses(row.ErrorsByClass)},
	}...)
	for _, p := range s.Percentiles {
		fs = append(fs, field{percentileName(p) + "_ms", ms(row.EndToEnd.At(p))})
	}
	fs = append(fs,
		field{"max_ms", ms(row.EndToEnd.MaxMs, row.EndToEnd.N > 0)},
		field{"detect_p50_ms", ms(row.Detection.At(50))},
		field{"detect_p99_ms", ms(row.Detection.At(99))},
		field{"detect_mean_ms", msPtr(row.DetectionMeanMs)},
		field{"bound_ms", msPtr(row.BoundMs)},
		field{"bound_gap_ms", msPtr(row.BoundGapMs)},
	)
	if row.OK > 0 {
		fs = append(fs, field{"req_mean", math.Round(row.RequestsMean*1000) / 1000}, field{"req_p50", row.RequestsP50})
	} else {
		fs = append(fs, field{"req_mean", nil}, field{"req_p50", nil})
	}
	if s.Batch > 0 {
		fs = append(fs, field{"batches", row.Batches}, field{"makespan_p50_ms", ms(row.MakespanP50Ms, row.Batches > 0)},
			field{"makespan_max_ms", ms(row.MakespanMaxMs, row.Batches > 0)})
	}
	return fs
}

// msPtr rounds an optional millisecond value to the microsecond; nil stays null.
func msPtr(v *float64) any {
	if v == nil {
		return nil
	}
	return math.Round(*v*1000) / 1000
}

func ratio(num, den int) any {
	if den == 0 {
		return nil
	}
	return math.Round(float64(num)/float64(den)*1e6) / 1e6
}

// errorClasses writes errors by class as "class=n" pairs, sorted, space separated ("" when none).
func errorClasses(m map[string]int) string {
	var parts []string
	for _, class := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", class, m[class]))
	}
	return strings.Join(parts, " ")
}

// percentileName is "p50", "p99.9": the column stem of a percentile.
func percentileName(p float64) string { return "p" + strconv.FormatFloat(p, 'f', -1, 64) }

// CSV renders s as RFC 4180 CSV: a header, then one line per row. Empty cells are "not available".
func CSV(s *Summary) Reporter {
	return func(w io.Writer) error {
		cw := csv.NewWriter(w)
		var header []string
		for _, f := range fields(s, Row{}) {
			header = append(header, f.name)
		}
		if err := cw.Write(header); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
		for _, row := range s.Rows {
			var rec []string
			for _, f := range fields(s, row) {
				rec = append(rec, csvValue(f.value))
			}
			if err := cw.Write(rec); err != nil {
				return fmt.Errorf("write csv: %w", err)
			}
		}
		cw.Flush()
		return cw.Error()
	}
}

func csvValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		return strconv.Itoa(v)
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// JSON renders s as one indented JSON object: the run, then rows whose keys are the CSV columns in the same
// order (unavailable values are null).
func JSON(s *Summary) Reporter {
	return func(w io.Writer) error {
		var b bytes.Buffer
		b.WriteString("{")
		put := func(first bool, name string, v any) error {
			if !first {
				b.WriteString(",")
			}
			k, _ := json.Marshal(name)
			val, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("encode %s: %w", name, err)
			}
			b.Write(k)
			b.WriteString(":")
			b.Write(val)
			return nil
		}
		if err := errors.Join(
			put(true, "run_id", s.RunID),
			put(false, "percentiles", s.Percentiles),
			put(false, "sweep", s.Sweep),
			put(false, "visible_sources", s.VisibleSources),
			put(false, "offset_max_error_ms", s.OffsetMaxErrorMs),
			put(false, "server", s.Server),
			put(false, "interrupted", s.Interrupted),
			put(false, "canceled", s.Canceled),
			put(false, "abandoned", s.Abandoned),
			put(false, "faults_injected", s.FaultsInjected),
			put(false, "dropped", s.Dropped),
			put(false, "what_if", s.WhatIf),
			put(false, "batch", s.Batch),
			put(false, "bounds", s.Bounds),
		); err != nil {
			return err
		}
		if s.Dropped > 0 {
			if err := put(false, "max_in_flight", s.MaxInFlight); err != nil {
				return err
			}
		}
		if s.Quality != nil {
			if err := put(false, "quality", s.Quality); err != nil {
				return err
			}
		}
		b.WriteString(`,"rows":[`)
		for i, row := range s.Rows {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("{")
			for j, f := range fields(s, row) {
				if err := put(j == 0, f.name, f.value); err != nil {
					return err
				}
			}
			b.WriteString("}")
		}
		b.WriteString("]}")
		var out bytes.Buffer
		if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		out.WriteByte('\n')
		_, err := w.Write(out.Bytes())
		return err
	}
}
