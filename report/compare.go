package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Verdicts of a Change.
const (
	VerdictBetter = "better"
	VerdictWorse  = "worse"
	VerdictSame   = "~"   // the difference is within run-to-run noise
	VerdictNA     = "n/a" // too few trials on a side to tell
)

// Compare metrics; the name carries the unit of A, B, Delta and the interval.
const (
	CompareP50       = "p50_ms"        // end-to-end median
	CompareP99       = "p99_ms"        // end-to-end 99th percentile
	CompareDetectP50 = "detect_p50_ms" // detection-delay median
	CompareReqMean   = "req_mean"      // requests per ok trial, mean
)

// Defaults of CompareOptions.
const (
	DefaultResamples   = 2000
	DefaultConfidence  = 0.95
	DefaultCompareSeed = 1
	DefaultMinTrials   = 5
)

// CompareOptions tune Compare; zero fields take the defaults above.
type CompareOptions struct {
	Resamples  int     // bootstrap resamples per metric
	Confidence float64 // level of the bootstrap interval, in (0, 1)
	Seed       uint64  // base seed; each strategy and metric derives its own stream, so output is reproducible
	MinTrials  int     // fewer ok trials on either side: verdict n/a
}

func (o CompareOptions) normalized() CompareOptions {
	o.Resamples = cmp.Or(o.Resamples, DefaultResamples)
	o.Confidence = cmp.Or(o.Confidence, DefaultConfidence)
	o.Seed = cmp.Or(o.Seed, DefaultCompareSeed)
	o.MinTrials = cmp.Or(o.MinTrials, DefaultMinTrials)
	return o
}

// Comparison is run B measured against run A, per strategy present in both.
type Comparison struct {
	A     string `json:"a"` // run ids
	B     string `json:"b"`
	Sweep bool   `json:"sweep"` // changes are per strategy and image quality
	// SegmentSweep: changes are per strategy, image quality and segment size.
	SegmentSweep bool     `json:"segment_sweep,omitempty"`
	Resamples    int      `json:"resamples"`
	Confidence   float64  `json:"confidence"`
	Seed         uint64   `json:"seed"`
	MinTrials    int      `json:"min_trials"`
	Changes      []Change `json:"changes"`
	OnlyA        []string `json:"only_a,omitempty"` // strategies (q<N> in sweeps) in A only
	OnlyB        []string `json:"only_b,omitempty"`
	// ConfigDiffs are the settings in which the two runs differ (seeds, paths and targets aside): a change
	// may come from them rather than from the server.
	ConfigDiffs []string `json:"config_diffs,omitempty"`
}

// Change is one metric of one strategy, A against B. Pointers are nil where a side had no values.
type Change struct {
	Strategy     string   `json:"strategy"`
	ImageQuality int      `json:"image_quality,omitempty"` // in sweeps
	SegmentSize  int      `json:"segment_size,omitempty"`  // in segment-size sweeps
	Metric       string   `json:"metric"`
	NA           int      `json:"n_a"` // values behind the metric on each side
	NB           int      `json:"n_b"`
	A            *float64 `json:"a"`
	B            *float64 `json:"b"`
	Delta        *float64 `json:"delta"`   // B - A
	CILo         *float64 `json:"ci_lo"`   // bootstrap interval of B - A, lower end
	CIHi         *float64 `json:"ci_hi"`   // upper end
	MannWhitneyP *float64 `json:"mw_p"`    // p50 only: two-sided Mann–Whitney U p-value
	Verdict      string   `json:"verdict"` // better, worse, ~ or n/a
}

type compareKey struct {
	strategy string
	quality  int
	segment  int // in segment-size sweeps
}

// samples are the per-trial values of one run that compare resamples.
type samples struct {
	e2e, det, req []float64
}

// Compare measures B against A from their raw trials (ok trials only). For each strategy in both runs it
// reports p50 and p99 end-to-end, detection p50 and mean requests per trial, each with a bootstrap interval
// of the difference B - A. The verdict is driven by that interval alone: better or worse when it excludes 0,
// "~" otherwise; the Mann–Whitney p-value of the p50 row is a cross-check, shown but not voting.
func Compare(a, b *Run, o CompareOptions) (*Comparison, error) {
	o = o.normalized()
	if o.Resamples < 100 || o.Confidence <= 0 || o.Confidence >= 1 || o.MinTrials < 2 {
		return nil, fmt.Errorf("compare: want resamples >= 100 (%d), confidence in (0, 1) (%g), min trials >= 2 (%d)",
			o.Resamples, o.Confidence, o.MinTrials)
	}
	c := &Comparison{A: a.Meta.RunID, B: b.Meta.RunID, Sweep: isSweep(a) || isSweep(b),
		SegmentSweep: isSegmentSweep(a) || isSegmentSweep(b),
		Resamples:    o.Resamples, Confidence: o.Confidence, Seed: o.Seed, MinTrials: o.MinTrials}
	c.ConfigDiffs = configDiffs(a, b)
	sa, sb := collect(a, c.Sweep, c.SegmentSweep), collect(b, c.Sweep, c.SegmentSweep)
	order := append(RunStrategies(a), RunStrategies(b)...)
	keys := slices.SortedFunc(maps.Keys(sa), func(x, y compareKey) int {
		return cmp.Or(cmp.Compare(slices.Index(order, x.strategy), slices.Index(order, y.strategy)),
			cmp.Compare(x.quality, y.quality), cmp.Compare(x.segment, y.segment))
	})
	for _, k := range keys {
		vb, ok := sb[k]
		if !ok {
			c.OnlyA = append(c.OnlyA, keyName(k, c.Sweep, c.SegmentSweep))
			continue
		}
		va := sa[k]
		for _, m := range []struct {
			metric string
			a, b   []float64
			stat   statistic
		}{
			{CompareP50, va.e2e, vb.e2e, statistic{50}},
			{CompareP99, va.e2e, vb.e2e, statistic{99}},
			{CompareDetectP50, va.det, vb.det, statistic{50}},
			{CompareReqMean, va.req, vb.req, statistic{0}},
		} {
			ch := change(m.a, m.b, m.stat, o, seedFor(o.Seed, k, m.metric))
			ch.Strategy, ch.Metric = k.strategy, m.metric
			if c.Sweep {
				ch.ImageQuality, ch.SegmentSize = k.quality, k.segment
			}
			c.Changes = append(c.Changes, ch)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(sb), func(x, y compareKey) int {
		return cmp.Or(cmp.Compare(x.strategy, y.strategy), cmp.Compare(x.quality, y.quality), cmp.Compare(x.segment, y.segment))
	}) {
		if _, ok := sa[k]; !ok {
			c.OnlyB = append(c.OnlyB, keyName(k, c.Sweep, c.SegmentSweep))
		}
	}
	if len(c.Changes) == 0 {
		return c, fmt.Errorf("compare: the runs have no strategy in common (a: %s; b: %s)",
			strings.Join(c.OnlyA, ", "), strings.Join(c.OnlyB, ", "))
	}
	return c, nil
}

func keyName(k compareKey, sweep, segmentSweep bool) string {
	if !sweep {
		return k.strategy
	}
	name := k.strategy + " q" + strconv.Itoa(k.quality)
	if segmentSweep {
		name += " s" + strconv.Itoa(k.segment)
	}
	return name
}

func isSweep(run *Run) bool {
	return varies(run, func(t record.Trial) int { return t.ImageQuality }, run.Meta.Config.ImageQualities) ||
		isSegmentSweep(run)
}

func collect(run *Run, sweep, segmentSweep bool) map[compareKey]*samples {
	out := map[compareKey]*samples{}
	for _, t := range run.Trials {
		k := compareKey{strategy: t.Strategy}
		if sweep {
			k.quality = t.ImageQuality
		}
		if segmentSweep {
			k.segment = t.SegmentSize
		}
		s := out[k]
		if s == nil {
			s = &samples{}
			out[k] = s
		}
		if t.Result != record.ResultOK {
			continue
		}
		if t.EndToEndMs != nil {
			s.e2e = append(s.e2e, *t.EndToEndMs)
		}
		if t.DetectionDelayMs != nil {
			s.det = append(s.det, *t.DetectionDelayMs)
		}
		s.req = append(s.req, t.WaitRequests())
	}
	for _, s := range out {
		slices.Sort(s.e2e)
		slices.Sort(s.det)
		slices.Sort(s.req)
	}
	return out
}

// seedFor derives a stream per strategy and metric, so adding a strategy does not change the others' intervals.
func seedFor(base uint64, k compareKey, metric string) [2]uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d\x00%s", k.strategy, k.quality, metric)
	if k.segment != 0 { // unchanged streams for runs without a segment-size sweep
		fmt.Fprintf(h, "\x00s%d", k.segment)
	}
	return [2]uint64{base, h.Sum64()}
}

func change(a, b []float64, s statistic, o CompareOptions, seed [2]uint64) Change {
	ch := Change{NA: len(a), NB: len(b), Verdict: VerdictNA}
	p := func(v float64) *float64 { return &v }
	if len(a) > 0 {
		ch.A = p(s.of(a))
	}
	if len(b) > 0 {
		ch.B = p(s.of(b))
	}
	if ch.A != nil && ch.B != nil {
		ch.Delta = p(*ch.B - *ch.A)
	}
	if s.p == 50 && len(a) > 0 && len(b) > 0 && ch.Delta != nil {
		ch.MannWhitneyP = p(mannWhitney(a, b))
	}
	if len(a) < o.MinTrials || len(b) < o.MinTrials {
		return ch
	}
	lo, hi := bootstrapDiff(a, b, s, o.Resamples, o.Confidence, seed)
	ch.CILo, ch.CIHi = p(lo), p(hi)
	switch {
	case lo > 0:
		ch.Verdict = VerdictWorse // every metric here is better lower
	case hi < 0:
		ch.Verdict = VerdictBetter
	default:
		ch.Verdict = VerdictSame
	}
	return ch
}

// CompareTable renders c as an ASCII or markdown table (latencies in seconds), then the method as a footer.
func CompareTable(c *Comparison, markdown bool) Reporter {
	return func(w io.Writer) error {
		header := []string{"strategy"}
		if c.Sweep {
			header = append(header, "quality")
		}
		if c.SegmentSweep {
			header = append(header, "segment")
		}
		header = append(header, "metric", "n_a", "n_b", "a", "b", "delta", "change", "ci95", "mw_p", "verdict")
		if c.Confidence != DefaultConfidence {
			header[len(header)-3] = "ci" + strconv.FormatFloat(c.Confidence*100, 'f', -1, 64)
		}
		align := tw.Alignment{}
		for _, h := range header {
			a := tw.AlignRight
			if h == "strategy" || h == "metric" || h == "verdict" {
				a = tw.AlignLeft
			}
			align = append(align, a)
		}
		t := tablewriter.NewTable(w, tablewriter.WithRenderer(newRenderer(markdown)),
			tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithAlignment(align))
		t.Header(header)
		for _, ch := range c.Changes {
			cells := []string{cell(ch.Strategy, markdown)}
			if c.Sweep {
				cells = append(cells, strconv.Itoa(ch.ImageQuality))
			}
			if c.SegmentSweep {
				cells = append(cells, strconv.Itoa(ch.SegmentSize))
			}
			name, scale, digits := ch.Metric, 1.0, 1
			if stem, ok := strings.CutSuffix(ch.Metric, "_ms"); ok {
				name, scale, digits = stem+"_s", 1e-3, 3
			}
			num := func(v *float64, sign bool) string {
				if v == nil {
					return "n/a"
				}
				s := strconv.FormatFloat(*v*scale, 'f', digits, 64)
				if sign && *v >= 0 {
					s = "+" + s
				}
				return s
			}
			pct := "n/a"
			if ch.Delta != nil && ch.A != nil && *ch.A != 0 {
				pct = fmt.Sprintf("%+.1f%%", *ch.Delta / *ch.A * 100)
			}
			ci := "n/a"
			if ch.CILo != nil {
				ci = "[" + num(ch.CILo, true) + ", " + num(ch.CIHi, true) + "]"
			}
			mw := ""
			if ch.MannWhitneyP != nil {
				mw = strconv.FormatFloat(*ch.MannWhitneyP, 'f', 3, 64)
			}
			cells = append(cells, name, strconv.Itoa(ch.NA), strconv.Itoa(ch.NB), num(ch.A, false), num(ch.B, false),
				num(ch.Delta, true), pct, ci, mw, ch.Verdict)
			if err := t.Append(cells); err != nil {
				return fmt.Errorf("compare row %s: %w", ch.Strategy, err)
			}
		}
		if err := t.Render(); err != nil {
			return fmt.Errorf("render compare: %w", err)
		}
		var b strings.Builder
		bullet := ""
		if markdown {
			b.WriteString("\n")
			bullet = "- "
		}
		fmt.Fprintf(&b, "%sa = %s, b = %s; delta = b - a; lower is better for every metric; values are nearest-rank "+
			"percentiles of the raw trials (the run table's HdrHistogram values may differ in the 4th digit)\n", bullet, c.A, c.B)
		fmt.Fprintf(&b, "%sverdict: driven by the %g%% percentile-bootstrap interval of b - a (%d resamples of the per-trial "+
			"values of ok trials, seed %d): better/worse when it excludes 0, ~ when it does not, n/a below %d trials a side; "+
			"mw_p (Mann–Whitney U, two-sided, normal approximation; median rows) is a cross-check and does not vote\n",
			bullet, c.Confidence*100, c.Resamples, c.Seed, c.MinTrials)
		if len(c.OnlyA) > 0 {
			fmt.Fprintf(&b, "%sonly in a: %s\n", bullet, strings.Join(c.OnlyA, ", "))
		}
		if len(c.OnlyB) > 0 {
			fmt.Fprintf(&b, "%sonly in b: %s\n", bullet, strings.Join(c.OnlyB, ", "))
		}
		for _, d := range c.ConfigDiffs {
			fmt.Fprintf(&b, "%sconfiguration: %s\n", bullet, d)
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
}

// Worse lists the changes whose verdict is worse.
func (c *Comparison) Worse() []Change {
	var out []Change
	for _, ch := range c.Changes {
		if ch.Verdict == VerdictWorse {
			out = append(out, ch)
		}
	}
	return out
}

// CompareJSON renders c as indented JSON; values are rounded to the microsecond (ms metrics) or 1e-6.
func CompareJSON(c *Comparison) Reporter {
	return func(w io.Writer) error {
		out := *c
		out.Changes = slices.Clone(c.Changes)
		round := func(v *float64) *float64 {
			if v == nil {
				return nil
			}
			r := math.Round(*v*1e6) / 1e6
			return &r
		}
		for i, ch := range out.Changes {
			ch.A, ch.B, ch.Delta, ch.CILo, ch.CIHi, ch.MannWhitneyP =
				round(ch.A), round(ch.B), round(ch.Delta), round(ch.CILo), round(ch.CIHi), round(ch.MannWhitneyP)
			out.Changes[i] = ch
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return fmt.Errorf("encode comparison: %w", err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
}
