package report

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"strings"

	"github.com/cvatbench/cvatbench/bench/record"
)

// CellBound is the optimal-polling bound of one workload cell (image quality and segment size in a sweep;
// the whole run otherwise), over the visibility times of every ok trial of the cell, whatever its strategy.
type CellBound struct {
	ImageQuality int   `json:"image_quality,omitempty"`
	SegmentSize  int   `json:"segment_size,omitempty"`
	Bound        Bound `json:"bound"`
	// Within is the best schedule of at most 1, 2, 3 listings per task (BestWithin): the delay a hard
	// budget of listings buys, where Bound is per mean listing.
	Within []BoundPoint `json:"within"`
}

// budgets are the listing budgets of CellBound.Within.
var budgets = []int{1, 2, 3}

// fixedSchedule names the strategies that list jobs on a schedule fixed in advance, which the bound covers:
// a point of theirs below it is a bug, not information.
func fixedSchedule(strategy string) bool {
	name, _, _ := strings.Cut(strategy, ":") // a spec's strategy (poll:interval=25ms)
	switch name {
	case "busyloop", "poll":
		return true
	}
	return false
}

// visibleAfterUpload is upload done → jobs visible of an ok trial, in ms; false without both times.
func visibleAfterUpload(t record.Trial) (float64, bool) {
	if t.Result != record.ResultOK || t.UploadDoneAt == nil || t.JobsVisibleAt == nil {
		return 0, false
	}
	return float64(t.JobsVisibleAt.Sub(*t.UploadDoneAt).Nanoseconds()) / 1e6, true
}

// boundCells computes the bound of every cell from the rows' trials, keyed as the rows are.
func boundCells(cells map[[2]int][]float64) []CellBound {
	keys := slices.SortedFunc(maps.Keys(cells), func(a, b [2]int) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	out := make([]CellBound, 0, len(keys))
	for _, k := range keys {
		cb := CellBound{ImageQuality: k[0], SegmentSize: k[1], Bound: PollingBound(cells[k], 0)}
		for _, budget := range budgets {
			cb.Within = append(cb.Within, BestWithin(cells[k], budget))
		}
		out = append(out, cb)
	}
	return out
}

// setBoundGaps places every row against its cell's bound at the row's own mean request count.
func setBoundGaps(s *Summary) {
	for i := range s.Rows {
		row := &s.Rows[i]
		for _, cb := range s.Bounds {
			if cb.ImageQuality != row.ImageQuality || cb.SegmentSize != row.SegmentSize || row.DetectionMeanMs == nil {
				continue
			}
			if b, ok := cb.Bound.At(row.RequestsMean); ok {
				gap := *row.DetectionMeanMs - b
				row.BoundMs, row.BoundGapMs = &b, &gap
			}
		}
	}
}

// BelowBound lists the rows whose mean detection delay is below their cell's bound, with the fixed-schedule
// ones (a bug if any) apart from those that read other signals.
func (s *Summary) BelowBound() (fixed, informed []Row) {
	for _, row := range s.Rows {
		if row.BoundGapMs == nil || *row.BoundGapMs >= 0 {
			continue
		}
		if fixedSchedule(row.Strategy) {
			fixed = append(fixed, row)
		} else {
			informed = append(informed, row)
		}
	}
	return fixed, informed
}

// boundNotes are the table footer's lines on the bound: what it is, where it lies at 1 to 3 listings, and
// which strategies went below it.
func boundNotes(s *Summary) string {
	var b strings.Builder
	for _, cb := range s.Bounds {
		if cb.Bound.N == 0 {
			continue
		}
		var at []string
		for _, k := range []float64{1, 2, 3} {
			if d, ok := cb.Bound.At(k); ok {
				at = append(at, fmt.Sprintf("%.0f ms at %g", d, k))
			}
		}
		cell := ""
		if s.Sweep {
			cell = cellName(s, Row{ImageQuality: cb.ImageQuality, SegmentSize: cb.SegmentSize})
		}
		var within []string
		for i, w := range cb.Within {
			within = append(within, fmt.Sprintf("%.0f ms within %d", w.DelayMs, budgets[i]))
		}
		fmt.Fprintf(&b, "vs_bound: mean detection minus the optimal fixed listing schedule's at the same mean requests%s "+
			"(over %d trials' upload→visible times): %s listings per task on average; %s listings at most\n",
			cell, cb.Bound.N, strings.Join(at, ", "), strings.Join(within, ", "))
	}
	fixed, informed := s.BelowBound()
	var signals, shared []string
	for _, row := range informed {
		part := fmt.Sprintf("%s by %.0f ms", row.Strategy+cellName(s, row), -*row.BoundGapMs)
		if name, _, _ := strings.Cut(row.Strategy, ":"); strings.HasPrefix(name, "project-") {
			shared = append(shared, part)
		} else {
			signals = append(signals, part)
		}
	}
	if len(signals) > 0 {
		fmt.Fprintf(&b, "below the bound: %s; they read other signals than a listing (request status, webhooks, "+
			"earlier trials), and the distance is what that information is worth\n", strings.Join(signals, ", "))
	}
	if len(shared) > 0 {
		fmt.Fprintf(&b, "below the bound: %s; one call of theirs covers the whole batch, which no per-task schedule "+
			"can, and their requests are its share per task\n", strings.Join(shared, ", "))
	}
	if len(fixed) > 0 {
		var parts []string
		for _, row := range fixed {
			parts = append(parts, fmt.Sprintf("%s by %.1f ms", row.Strategy+cellName(s, row), -*row.BoundGapMs))
		}
		fmt.Fprintf(&b, "BUG: fixed-schedule strategies below the bound, which no fixed schedule can be: %s\n", strings.Join(parts, ", "))
	}
	return b.String()
}
