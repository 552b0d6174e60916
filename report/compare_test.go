package report

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/record"
)

// syntheticRun has n ok trials per strategy with log-normal-ish latencies around 1 s (seeded), scaled by factor.
func syntheticRun(id string, n int, seed uint64, factor float64) *Run {
	rng := rand.New(rand.NewPCG(seed, 7))
	run := &Run{Meta: record.Meta{RunID: id, Config: bench.Config{Strategies: []string{"poll", "backoff"}, ImageQualities: []int{70}}}}
	for i := range n {
		for _, s := range []string{"poll", "backoff"} {
			e2e := 1000 * math.Exp(0.3*rng.NormFloat64()) * factor
			det := 50 * math.Exp(0.5*rng.NormFloat64())
			run.Trials = append(run.Trials, record.Trial{RunID: id, Seq: len(run.Trials), Strategy: s, ImageQuality: 70,
				Result: record.ResultOK, EndToEndMs: f(e2e), DetectionDelayMs: f(det), Requests: 3 + i%3})
		}
	}
	return run
}

func verdicts(c *Comparison) map[string]string {
	out := map[string]string{}
	for _, ch := range c.Changes {
		out[ch.Strategy+"/"+ch.Metric] = ch.Verdict
	}
	return out
}

func TestCompareRunWithItselfIsNoChange(t *testing.T) {
	for _, run := range []*Run{syntheticRun("a", 40, 1, 1), fixtureRun([]int{70}), fixtureRun([]int{30, 90})} {
		t.Run(run.Meta.RunID, func(t *testing.T) {
			c, err := Compare(run, run, CompareOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range c.Changes {
				if ch.Verdict != VerdictSame && ch.Verdict != VerdictNA {
					t.Errorf("%s %s: verdict %s comparing a run with itself", ch.Strategy, ch.Metric, ch.Verdict)
				}
				if ch.Delta != nil && *ch.Delta != 0 {
					t.Errorf("%s %s: delta %v", ch.Strategy, ch.Metric, *ch.Delta)
				}
				if ch.MannWhitneyP != nil && *ch.MannWhitneyP < 0.99 {
					t.Errorf("%s %s: Mann–Whitney p %v for identical samples", ch.Strategy, ch.Metric, *ch.MannWhitneyP)
				}
			}
		})
	}
}

func TestCompareDetectsShift(t *testing.T) {
	base := syntheticRun("base", 30, 1, 1)
	tests := []struct {
		name   string
		b      *Run
		p50    string
		detect string
	}{
		// +50% latency, detection unchanged in distribution but drawn anew: noise only.
		{"50% slower", syntheticRun("slow", 30, 2, 1.5), VerdictWorse, VerdictSame},
		{"a third faster", syntheticRun("fast", 30, 3, 2.0/3), VerdictBetter, VerdictSame},
		{"same distribution, other draws", syntheticRun("again", 30, 4, 1), VerdictSame, VerdictSame},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Compare(base, tc.b, CompareOptions{})
			if err != nil {
				t.Fatal(err)
			}
			v := verdicts(c)
			for _, s := range []string{"poll", "backoff"} {
				if v[s+"/"+CompareP50] != tc.p50 || v[s+"/"+CompareDetectP50] != tc.detect || v[s+"/"+CompareReqMean] != VerdictSame {
					t.Errorf("%s: verdicts %v", s, v)
				}
			}
			if tc.p50 == VerdictWorse && v["poll/"+CompareP99] != VerdictWorse {
				t.Errorf("p99 of a 50%% slower run: %s", v["poll/"+CompareP99])
			}
		})
	}
}

func TestCompareIsReproducible(t *testing.T) {
	a, b := syntheticRun("a", 25, 1, 1), syntheticRun("b", 25, 2, 1.1)
	c1, err := Compare(a, b, CompareOptions{Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := Compare(a, b, CompareOptions{Seed: 42})
	if diff := cmp.Diff(c1, c2); diff != "" {
		t.Errorf("same seed, different output:\n%s", diff)
	}
	c3, _ := Compare(a, b, CompareOptions{Seed: 43})
	if cmp.Equal(c1.Changes[0].CILo, c3.Changes[0].CILo) && cmp.Equal(c1.Changes[1].CILo, c3.Changes[1].CILo) {
		t.Error("the seed does not reach the bootstrap")
	}
}

func TestCompareFewTrialsIsNA(t *testing.T) {
	c, err := Compare(syntheticRun("a", 3, 1, 1), syntheticRun("b", 3, 2, 3), CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range c.Changes {
		if ch.Verdict != VerdictNA || ch.CILo != nil {
			t.Errorf("%s %s: verdict %s with 3 trials a side", ch.Strategy, ch.Metric, ch.Verdict)
		}
	}
}

func TestCompareStrategiesInOneRunOnly(t *testing.T) {
	a := syntheticRun("a", 10, 1, 1)
	b := fixtureRun([]int{70}) // poll, sdk, ui
	c, err := Compare(a, b, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.OnlyA, []string{"backoff"}) || !slices.Equal(c.OnlyB, []string{"sdk", "ui"}) || len(c.Changes) != 4 {
		t.Errorf("only a %v, only b %v, %d changes", c.OnlyA, c.OnlyB, len(c.Changes))
	}
	if _, err := Compare(fixtureRun([]int{70}), syntheticRun("x", 5, 1, 1).withStrategies("nap"), CompareOptions{}); err == nil {
		t.Error("runs without a common strategy compared")
	}
}

func (r *Run) withStrategies(name string) *Run {
	for i := range r.Trials {
		r.Trials[i].Strategy = name
	}
	r.Meta.Config.Strategies = []string{name}
	return r
}

func TestCompareGolden(t *testing.T) {
	c, err := Compare(syntheticRun("20261127T001500Z-aaaa", 20, 1, 1), syntheticRun("20261127T001500Z-bbbb", 20, 2, 1.5), CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    Reporter
	}{
		{"compare_ascii.golden", CompareTable(c, false)},
		{"compare_markdown.golden", CompareTable(c, true)},
		{"compare.json.golden", CompareJSON(c)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.r(&buf); err != nil {
				t.Fatal(err)
			}
			golden(t, "testdata/"+tc.name, buf.Bytes())
		})
	}
}

func TestMannWhitney(t *testing.T) {
	tests := []struct {
		name   string
		a, b   []float64
		lo, hi float64
	}{
		{"identical", []float64{1, 2, 3, 4, 5}, []float64{1, 2, 3, 4, 5}, 0.99, 1},
		{"constant", []float64{2, 2, 2}, []float64{2, 2, 2, 2}, 1, 1},
		// Fully separated 10 vs 10: exact two-sided p = 2/C(20,10) ≈ 1.1e-5; the normal approximation gives ≈ 1.8e-4.
		{"separated", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, []float64{11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 1e-4, 3e-4},
		// Interleaved: U = 45 of 100; z ≈ -0.38: p ≈ 0.70.
		{"interleaved", []float64{1, 3, 5, 7, 9, 11, 13, 15, 17, 19}, []float64{2, 4, 6, 8, 10, 12, 14, 16, 18, 20}, 0.65, 0.75},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mannWhitney(tc.a, tc.b)
			if p < tc.lo || p > tc.hi {
				t.Errorf("p %v, want in [%v, %v]", p, tc.lo, tc.hi)
			}
			if q := mannWhitney(tc.b, tc.a); math.Abs(p-q) > 1e-12 {
				t.Errorf("not symmetric: %v vs %v", p, q)
			}
		})
	}
}

// The O(n) resampler must pick exactly what sorting the resample would.
func TestResamplerMatchesSorting(t *testing.T) {
	sorted := []float64{1, 2, 2, 3, 5, 8, 13, 21, 34}
	for _, s := range []statistic{{50}, {99}, {10}, {0}} {
		r1 := rand.New(rand.NewPCG(1, 2))
		r2 := rand.New(rand.NewPCG(1, 2))
		rs := newResampler(sorted)
		for range 200 {
			got := rs.draw(r1, s)
			draw := make([]float64, len(sorted))
			idx := make([]int, len(sorted))
			for i := range idx {
				idx[i] = r2.IntN(len(sorted))
			}
			for i, j := range idx {
				draw[i] = sorted[j]
			}
			slices.Sort(draw)
			want := s.of(draw)
			if math.Abs(got-want) > 1e-9 {
				t.Fatalf("stat %v: got %v, want %v", s, got, want)
			}
		}
	}
}

func TestCompareTableFooterNamesTheMethod(t *testing.T) {
	c, _ := Compare(syntheticRun("a", 10, 1, 1), syntheticRun("b", 10, 2, 1), CompareOptions{})
	var buf bytes.Buffer
	if err := CompareTable(c, false)(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"driven by the 95% percentile-bootstrap interval", "2000 resamples", "Mann–Whitney", "does not vote"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("footer lacks %q:\n%s", want, buf.String())
		}
	}
}
