package record

import (
	"fmt"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

func okRecord(strategy string, e2eMs, detMs float64) Trial {
	return Trial{Strategy: strategy, Result: ResultOK, EndToEndMs: &e2eMs, DetectionDelayMs: &detMs}
}

func TestRecorderMerge(t *testing.T) {
	a, b := NewRecorder(), NewRecorder()
	a.Record(okRecord("poll", 1000, 10))
	a.Record(okRecord("poll", 2000, -5)) // negative detection: overflow, not lost silently
	b.Record(okRecord("poll", 3000, 20))
	b.Record(okRecord("sdk", 5000, 4000))
	b.Record(Trial{Strategy: "sdk", Result: ResultTimeout})
	b.Record(okRecord("sdk", float64(time.Hour/time.Millisecond), 1)) // beyond 30 min
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		strategy, metric string
		count            int64
		overflow         int
		maxMs            float64
	}{
		{"poll", MetricEndToEnd, 3, 0, 3000},
		{"poll", MetricDetection, 2, 1, 20},
		{"sdk", MetricEndToEnd, 1, 1, 5000},
		{"sdk", MetricDetection, 2, 0, 4000},
	}
	for _, tc := range tests {
		t.Run(tc.strategy+"/"+tc.metric, func(t *testing.T) {
			h := a.Histogram(tc.strategy, tc.metric)
			if h.TotalCount() != tc.count || a.Overflow(tc.strategy, tc.metric) != tc.overflow {
				t.Errorf("count %d overflow %d, want %d %d", h.TotalCount(), a.Overflow(tc.strategy, tc.metric), tc.count, tc.overflow)
			}
			if !h.ValuesAreEquivalent(h.Max(), int64(tc.maxMs*1e6)) {
				t.Errorf("max %d ns, want about %v ms", h.Max(), tc.maxMs)
			}
		})
	}
	if got := fmt.Sprint(a.Strategies()); got != "[poll sdk]" {
		t.Errorf("strategies %s", got)
	}
}

func TestRecorderMergeRejectsForeignGeometry(t *testing.T) {
	a, b := NewRecorder(), NewRecorder()
	small := hdrhistogram.New(1, 1000, 2) // not from NewHistogram
	_ = small.RecordValue(999)
	b.hists["poll"] = map[string]*hdrhistogram.Histogram{MetricEndToEnd: small}
	a.Record(okRecord("poll", 1, 1))
	// Merging into a NewHistogram never drops values of a smaller range; the reverse would.
	if err := a.Merge(b); err != nil {
		t.Fatalf("merge of a smaller range: %v", err)
	}
	big := NewRecorder()
	big.Record(okRecord("poll", 20*60*1000, 1))
	b2 := NewRecorder()
	b2.hists["poll"] = map[string]*hdrhistogram.Histogram{MetricEndToEnd: hdrhistogram.New(1, 1000, 2)}
	if err := b2.Merge(big); err == nil {
		t.Error("merge that drops values reported no error")
	}
}

func BenchmarkRecorderRecord(b *testing.B) {
	r := NewRecorder()
	rec := okRecord("poll", 1234.5, 12.5)
	for b.Loop() {
		r.Record(rec)
	}
}

func BenchmarkRecorderMerge(b *testing.B) {
	parts := make([]*Recorder, 4)
	for i := range parts {
		parts[i] = NewRecorder()
		for j := range 1000 {
			parts[i].Record(okRecord("poll", float64(j), float64(j%10)))
			parts[i].Record(okRecord("sdk", float64(5000+j), float64(j%100)))
		}
	}
	for b.Loop() {
		total := NewRecorder()
		for _, p := range parts {
			if err := total.Merge(p); err != nil {
				b.Fatal(err)
			}
		}
	}
}
