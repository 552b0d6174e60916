package report

import (
	"bytes"
	"strings"
	"testing"
)

// The seed table picks each approach's fastest strategy by end-to-end p50 and places it against the quote.
func TestSeedTable(t *testing.T) {
	s, err := Summarize(fixtureRun([]int{70}), DefaultPercentiles)
	if err != nil {
		t.Fatal(err)
	}
	rows := SeedTable(s)
	if len(rows) != 4 {
		t.Fatalf("%d approaches", len(rows))
	}
	byName := map[string]SeedRow{}
	for _, r := range rows {
		byName[r.Approach.Name] = r
	}
	polling, sdk, async, server := byName["original polling"], byName["synchronous SDK wait"],
		byName["asynchronous notification / backoff"], byName["server-side change (pre-allocated job IDs)"]
	if polling.Best == nil || polling.Best.Strategy != "poll" || sdk.Best == nil || sdk.Best.Strategy != "sdk" {
		t.Fatalf("polling %+v, sdk %+v", polling.Best, sdk.Best)
	}
	// ui ran but finished no trial: counted, not chosen.
	if async.Best != nil || async.Strategies != 1 || server.Best != nil || server.Strategies != 0 {
		t.Errorf("async %+v (%d), server %+v", async.Best, async.Strategies, server.Best)
	}
	if got := polling.Approach.verdict(910); got != "within" {
		t.Errorf("0.91 s against 0.6–1 s: %q", got)
	}
	if got := sdk.Approach.verdict(5400); got != "6.8× the quoted top" {
		t.Errorf("5.4 s against 0.5–0.8 s: %q", got)
	}
	if got := server.Approach.verdict(50); got != "within" {
		t.Errorf("50 ms against < 100 ms: %q", got)
	}
	if got := (Approach{QuotedLoMs: 100, QuotedHiMs: 300}).verdict(80); got != "faster than quoted" {
		t.Errorf("80 ms against 0.1–0.3 s: %q", got)
	}
	var b bytes.Buffer
	if err := Table(s, false)(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"The four approaches of the cvat-ai/cvat#9073 write-up", "| original polling", "0.600–1.000",
		"6.8× the quoted top", "not run", "status_check_period"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	// On the emulator, the row of the server-side change says how to measure it.
	if notes := strings.Join(seedNotes(&Summary{Server: "emulator profile cvat-default"}, rows), "\n"); !strings.Contains(notes, "--sim-what-if prealloc-jobs") {
		t.Errorf("notes on the emulator lack the what-if:\n%s", notes)
	}
	if notes := strings.Join(seedNotes(s, rows), "\n"); strings.Contains(notes, "--sim-what-if") {
		t.Errorf("notes off the emulator name the what-if:\n%s", notes)
	}
	// One approach alone is no comparison: no section.
	one := fixtureRun([]int{70})
	one.Meta.Config.Strategies = []string{"poll"}
	var kept = one.Trials[:0]
	for _, tr := range one.Trials {
		if tr.Strategy == "poll" {
			kept = append(kept, tr)
		}
	}
	one.Trials = kept
	s1, _ := Summarize(one, DefaultPercentiles)
	b.Reset()
	if err := Table(s1, false)(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "#9073") {
		t.Errorf("a poll-only run prints the seed table:\n%s", b.String())
	}
}
