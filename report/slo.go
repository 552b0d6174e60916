package report

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SLO metrics. A percentile metric carries its percentile in SLO.Percentile.
const (
	SLOLatency   = "p"        // end-to-end percentile, p<N>
	SLODetection = "detect_p" // detection-delay percentile, detect_p<N>
	SLOErrors    = "errors"   // the strategy's error rate: errors while waiting / trials that got to the wait
	SLORequests  = "req"      // requests per ok trial, mean
)

// An SLO is one threshold, `[strategy:]metric<value` or `<=`: an upper bound a run must stay under.
type SLO struct {
	Text       string  // as given, for messages
	Strategy   string  // "" applies to every strategy
	Metric     string  // SLOLatency, SLODetection, SLOErrors or SLORequests
	Percentile float64 // for SLOLatency and SLODetection, in (0, 100]
	Inclusive  bool    // "<=" rather than "<"
	Limit      float64 // ms for latencies, a ratio in [0, 1] for errors, requests for req
}

// ParseSLOs parses every threshold and reports all malformed ones together.
func ParseSLOs(texts []string) ([]SLO, error) {
	var slos []SLO
	var errs []error
	for _, t := range texts {
		s, err := ParseSLO(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		slos = append(slos, s)
	}
	return slos, errors.Join(errs...)
}

// ParseSLO parses `[strategy:]metric<value`. Metrics: p<N> and detect_p<N> with a duration that has a unit
// ("2s", "750ms"), errors with a ratio or a percentage ("0.01", "1%"), req with a number.
func ParseSLO(text string) (SLO, error) {
	s := SLO{Text: strings.TrimSpace(text)}
	fail := func(format string, args ...any) (SLO, error) {
		return SLO{}, fmt.Errorf("slo %q: %s", s.Text, fmt.Sprintf(format, args...))
	}
	lhs, rhs, ok := strings.Cut(s.Text, "<")
	if !ok {
		if strings.Contains(s.Text, ">") {
			return fail("only < and <= are supported: an SLO is an upper bound")
		}
		return fail("want [strategy:]metric<value, e.g. webhook:p99<2s or errors<1%%")
	}
	if rest, ok := strings.CutPrefix(rhs, "="); ok {
		s.Inclusive, rhs = true, rest
	}
	lhs, rhs = strings.TrimSpace(lhs), strings.TrimSpace(rhs)
	metric := lhs
	if strategy, m, ok := strings.Cut(lhs, ":"); ok {
		s.Strategy, metric = strings.TrimSpace(strategy), strings.TrimSpace(m)
		if s.Strategy == "" {
			return fail("empty strategy before ':'")
		}
	}
	switch {
	case metric == SLOErrors:
		s.Metric = SLOErrors
		v, err := parseRatio(rhs)
		if err != nil {
			return fail("%v", err)
		}
		s.Limit = v
	case metric == SLORequests:
		s.Metric = SLORequests
		v, err := strconv.ParseFloat(rhs, 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return fail("requests per trial %q is not a number >= 0", rhs)
		}
		s.Limit = v
	case strings.HasPrefix(metric, SLODetection) || strings.HasPrefix(metric, SLOLatency):
		s.Metric = SLOLatency
		num := strings.TrimPrefix(metric, SLOLatency)
		if strings.HasPrefix(metric, SLODetection) {
			s.Metric, num = SLODetection, strings.TrimPrefix(metric, SLODetection)
		}
		p, err := strconv.ParseFloat(num, 64)
		if err != nil || num == "" || strings.ContainsAny(num, "eE+-") {
			return fail("unknown metric %q (valid: p<N>, detect_p<N>, errors, req)", metric)
		}
		if err := ValidatePercentiles([]float64{p}); err != nil {
			return fail("%v", err)
		}
		s.Percentile = p
		d, err := time.ParseDuration(rhs)
		switch {
		case err != nil && isNumber(rhs):
			return fail("duration %q needs a unit, e.g. %ss or %sms", rhs, rhs, rhs)
		case err != nil:
			return fail("bad duration %q", rhs)
		case d <= 0:
			return fail("duration %s is not positive", rhs)
		}
		s.Limit = float64(d) / float64(time.Millisecond)
	default:
		return fail("unknown metric %q (valid: p<N>, detect_p<N>, errors, req)", metric)
	}
	return s, nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// parseRatio reads "0.01" or "1%" as 0.01; it must lie in [0, 1].
func parseRatio(s string) (float64, error) {
	scale := 1.0
	num := s
	if n, ok := strings.CutSuffix(s, "%"); ok {
		scale, num = 100, strings.TrimSpace(n)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) {
		return 0, fmt.Errorf("error ratio %q is not a number or percentage", s)
	}
	v /= scale
	if v < 0 || v > 1 {
		return 0, fmt.Errorf("error ratio %s is outside [0, 1] (0%%..100%%)", s)
	}
	return v, nil
}

// CheckSLOStrategies reports every SLO that names a strategy not in strategies (the run's, or the ones about
// to run): a typo must not make a threshold pass silently.
func CheckSLOStrategies(slos []SLO, strategies []string) error {
	var errs []error
	for _, s := range slos {
		if s.Strategy != "" && !slices.Contains(strategies, s.Strategy) {
			errs = append(errs, fmt.Errorf("slo %q: strategy %q is not in the run (%s)", s.Text, s.Strategy,
				strings.Join(strategies, ", ")))
		}
	}
	return errors.Join(errs...)
}

// RunStrategies returns the strategies of run: the configured ones in order, then any others its trials name.
func RunStrategies(run *Run) []string {
	names := slices.Clone(run.Meta.Config.Strategies)
	for _, t := range run.Trials {
		if !slices.Contains(names, t.Strategy) {
			names = append(names, t.Strategy)
		}
	}
	return names
}

// SLOResult is one SLO checked against one row (strategy, and image quality in a sweep).
type SLOResult struct {
	SLO          SLO
	Strategy     string
	ImageQuality int    // set in sweeps
	Sweep        bool   // the row is one cell of a sweep
	Cell         string // the cell's name in a sweep (" q70", " q70 s5"), "" otherwise
	Observed     float64
	Available    bool // false: nothing to measure (no trials, or no successful ones); counts as a failure
	Pass         bool
}

// EvaluateSLOs checks each SLO against every row it applies to. An SLO without a strategy applies to every
// row; a strategy that has no rows (an interrupted run) yields one unavailable, failed result. Unknown
// strategies are an error (CheckSLOStrategies).
func EvaluateSLOs(run *Run, slos []SLO) ([]SLOResult, error) {
	if err := CheckSLOStrategies(slos, RunStrategies(run)); err != nil {
		return nil, err
	}
	var e2e, det []float64
	for _, s := range slos {
		switch {
		case s.Metric == SLOLatency && !slices.Contains(e2e, s.Percentile):
			e2e = append(e2e, s.Percentile)
		case s.Metric == SLODetection && !slices.Contains(det, s.Percentile):
			det = append(det, s.Percentile)
		}
	}
	if len(e2e) == 0 {
		e2e = []float64{50} // Summarize wants at least one
	}
	sum, err := summarize(run, e2e, det, false)
	if err != nil {
		return nil, err
	}
	var results []SLOResult
	for _, s := range slos {
		matched := false
		for _, row := range sum.Rows {
			if s.Strategy != "" && row.Strategy != s.Strategy {
				continue
			}
			matched = true
			r := SLOResult{SLO: s, Strategy: row.Strategy, ImageQuality: row.ImageQuality, Sweep: sum.Sweep,
				Cell: cellName(sum, row)}
			switch s.Metric {
			case SLOLatency:
				r.Observed, r.Available = row.EndToEnd.At(s.Percentile)
			case SLODetection:
				r.Observed, r.Available = row.Detection.At(s.Percentile)
			case SLOErrors: // the strategy's: setup failures are not its doing
				r.Available = row.N-row.SetupErrors > 0
				if r.Available {
					r.Observed = row.ErrorRate()
				}
			case SLORequests:
				r.Observed, r.Available = row.RequestsMean, row.OK > 0
			}
			r.Pass = r.Available && (r.Observed < s.Limit || s.Inclusive && r.Observed == s.Limit)
			results = append(results, r)
		}
		if !matched {
			results = append(results, SLOResult{SLO: s, Strategy: s.Strategy})
		}
	}
	return results, nil
}

// Failed returns the results that did not pass.
func Failed(results []SLOResult) []SLOResult {
	var out []SLOResult
	for _, r := range results {
		if !r.Pass {
			out = append(out, r)
		}
	}
	return out
}

// String is one line: verdict, the SLO as given, and what was observed where.
func (r SLOResult) String() string {
	verdict := "ok  "
	if !r.Pass {
		verdict = "FAIL"
	}
	where := r.Strategy
	if where == "" {
		where = "(all)"
	}
	where += r.Cell
	metric := r.SLO.Metric
	if metric == SLOLatency || metric == SLODetection {
		metric += strconv.FormatFloat(r.SLO.Percentile, 'f', -1, 64)
	}
	observed := "n/a (no successful trials)"
	if r.Available {
		switch r.SLO.Metric {
		case SLOLatency, SLODetection:
			observed = duration(r.Observed)
		case SLOErrors:
			observed = strconv.FormatFloat(r.Observed*100, 'f', 2, 64) + "%"
		case SLORequests:
			observed = strconv.FormatFloat(r.Observed, 'f', 2, 64)
		}
	} else if r.SLO.Metric == SLOErrors {
		observed = "n/a (no trial got as far as the wait)"
	}
	return fmt.Sprintf("slo %s %s: %s %s = %s", verdict, r.SLO.Text, where, metric, observed)
}

// SLOReport writes one line per result.
func SLOReport(results []SLOResult) Reporter {
	return func(w io.Writer) error {
		var b strings.Builder
		for _, r := range results {
			b.WriteString(r.String())
			b.WriteByte('\n')
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
}

// duration formats milliseconds as a Go duration, to the ms from 1 s up and to the µs below.
func duration(ms float64) string {
	d := time.Duration(math.Round(ms * float64(time.Millisecond)))
	if d >= time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Microsecond).String()
}
