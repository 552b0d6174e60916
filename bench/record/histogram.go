package record

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry: nanoseconds, 1 µs resolution, up to MaxTimeout, 3 significant digits.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(MaxTimeout)
	histDigits  = 3
)

// NewHistogram is the only histogram constructor, so every histogram shares one geometry and Merge never drops
// values: ns, 1µs..30min, 3 significant digits.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// Histogram metrics kept per strategy.
const (
	MetricEndToEnd  = "end_to_end"
	MetricDetection = "detection"
)

// Recorder accumulates latency histograms per strategy for one worker. It is NOT safe for concurrent use
// (hdrhistogram-go has no locking): each worker owns one, and the runner merges them at the end.
type Recorder struct {
	hists    map[string]map[string]*hdrhistogram.Histogram // strategy -> metric -> histogram
	overflow map[string]int                                // "strategy/metric" -> values out of range
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{hists: map[string]map[string]*hdrhistogram.Histogram{}, overflow: map[string]int{}}
}

func (r *Recorder) hist(strategy, metric string) *hdrhistogram.Histogram {
	m := r.hists[strategy]
	if m == nil {
		m = map[string]*hdrhistogram.Histogram{}
		r.hists[strategy] = m
	}
	h := m[metric]
	if h == nil {
		h = NewHistogram()
		m[metric] = h
	}
	return h
}

// Record adds the latencies of a successful trial. Values outside the histogram range (negative detection
// delays from clock-offset error, or above 30 min) are counted as overflow instead of being lost silently.
func (r *Recorder) Record(rec Trial) {
	if rec.Result != ResultOK {
		return
	}
	r.add(rec.Strategy, MetricEndToEnd, rec.EndToEndMs)
	r.add(rec.Strategy, MetricDetection, rec.DetectionDelayMs)
}

func (r *Recorder) add(strategy, metric string, v *float64) {
	if v == nil {
		return
	}
	h := r.hist(strategy, metric)
	// Round like report does when it rebuilds histograms from trials.jsonl, so
	// a value on a bucket edge lands in the same bucket in both.
	if err := h.RecordValue(int64(math.Round(*v * float64(time.Millisecond)))); err != nil {
		r.overflow[strategy+"/"+metric]++
	}
}

// Merge folds o into r. It fails if a histogram dropped values, which only happens if some histogram was not
// made by NewHistogram.
func (r *Recorder) Merge(o *Recorder) error {
	for s, m := range o.hists {
		for metric, h := range m {
			if n := r.hist(s, metric).Merge(h); n > 0 {
				return fmt.Errorf("merge %s/%s dropped %d values: histogram geometry differs", s, metric, n)
			}
		}
	}
	for k, n := range o.overflow {
		r.overflow[k] += n
	}
	return nil
}

// Histogram returns the histogram of strategy and metric, or nil if nothing was recorded.
func (r *Recorder) Histogram(strategy, metric string) *hdrhistogram.Histogram {
	return r.hists[strategy][metric]
}

// Strategies returns the strategies with recorded values, sorted.
func (r *Recorder) Strategies() []string { return slices.Sorted(maps.Keys(r.hists)) }

// Overflow returns how many values of strategy and metric fell outside the histogram range.
func (r *Recorder) Overflow(strategy, metric string) int { return r.overflow[strategy+"/"+metric] }
