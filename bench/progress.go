package bench

import (
	"fmt"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
)

type nopObserver struct{}

func (nopObserver) TrialStarted(string)        {}
func (nopObserver) APICall(string, cvat.Call)  {}
func (nopObserver) TrialFinished(record.Trial) {}

// collector is where finished trials go: the observer, trials.jsonl, the worker's recorder and the progress
// line. finish is safe for concurrent use; each recorder is used by one goroutine only.
type collector struct {
	r     *Runner
	w     *record.Writer
	total int
	start time.Time

	mu           sync.Mutex
	recorded     int
	errors       int
	canceled     int
	dropped      int
	printed      bool      // a plain progress line was written
	lastLine     time.Time // when
	offsetErrors []float64
	writeErr     error
}

func newCollector(r *Runner, w *record.Writer, total int, start time.Time) *collector {
	c := &collector{r: r, w: w, total: total, start: start}
	c.draw()
	return c
}

func (c *collector) finish(rec record.Trial, into *record.Recorder) {
	into.Record(rec)
	c.r.observer.TrialFinished(rec)
	err := c.w.Append(rec)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recorded++
	switch rec.Result {
	case record.ResultOK:
	case record.ResultCanceled:
		c.canceled++
	case record.ResultDropped:
		c.dropped++
	default:
		c.errors++
	}
	if rec.ClockOffsetErrorMs != nil {
		c.offsetErrors = append(c.offsetErrors, *rec.ClockOffsetErrorMs)
	}
	if err != nil && c.writeErr == nil {
		c.writeErr = err
	}
	c.drawLocked()
}

func (c *collector) draw() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drawLocked()
}

func (c *collector) drawLocked() {
	if c.r.progress == nil {
		return
	}
	now := c.r.clock.Now()
	elapsed := now.Sub(c.start).Truncate(time.Second)
	if c.r.progressEvery == 0 {
		fmt.Fprintf(c.r.progress, "\r%d/%d trials, %d errors, %s elapsed ", c.recorded, c.total, c.errors, elapsed)
		return
	}
	if c.printed && now.Sub(c.lastLine) < c.r.progressEvery && c.recorded < c.total {
		return
	}
	c.printed, c.lastLine = true, now
	fmt.Fprintf(c.r.progress, "progress: %d/%d trials, %d errors, %s elapsed\n", c.recorded, c.total, c.errors, elapsed)
}

func (c *collector) done() {
	if c.r.progress == nil {
		return
	}
	if c.r.progressEvery == 0 {
		c.draw()
		fmt.Fprintln(c.r.progress)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recorded < c.total { // stopped early: the last state was maybe not printed
		c.printed = false
		c.drawLocked()
	}
}
