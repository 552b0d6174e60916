package report

import (
	"strings"
	"testing"
)

// Rows below the bound are named in the footer: fixed-schedule strategies as a bug, project-level ones as
// shared calls, the others as what their signals are worth.
func TestBoundNotes(t *testing.T) {
	gap := func(v float64) *float64 { return &v }
	s := &Summary{
		Bounds: []CellBound{{Bound: PollingBound([]float64{100, 200, 300, 400}, 0)}},
		Rows: []Row{
			{Strategy: "poll:interval=25ms", BoundGapMs: gap(-3)},
			{Strategy: "webhook", BoundGapMs: gap(-40)},
			{Strategy: "project-poll", BoundGapMs: gap(-90)},
			{Strategy: "busyloop", BoundGapMs: gap(2)},
			{Strategy: "sdk"},
		},
	}
	s.Bounds[0].Within = []BoundPoint{BestWithin([]float64{100, 200, 300, 400}, 1)}
	notes := boundNotes(s)
	for _, want := range []string{
		"over 4 trials' upload→visible times): 150 ms at 1",
		"BUG: fixed-schedule strategies below the bound, which no fixed schedule can be: poll:interval=25ms by 3.0 ms",
		"below the bound: webhook by 40 ms; they read other signals",
		"below the bound: project-poll by 90 ms; one call of theirs covers the whole batch",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "busyloop") || strings.Contains(notes, "sdk") {
		t.Errorf("rows on or above the bound named:\n%s", notes)
	}
}
