package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// The seed of cvatbench is cvat-ai/cvat#9073 and the write-ups of it, which name four ways of getting a new
// task's job IDs and quote a latency range for each, without a method or a server. The seed table lines them
// up with what this run measured for the strategies that implement each approach.

// Approach is one of the write-up's four approaches.
type Approach struct {
	Name       string   // as the write-up calls it
	QuotedLoMs float64  // the quoted range; QuotedLoMs 0 with QuotedHiMs: "below QuotedHiMs"
	QuotedHiMs float64  //
	Strategies []string // cvatbench strategies (base names) that implement it
	Why        string   // what explains our figures against the quote, whatever the run
}

// Approaches are the write-up's four, in its order.
var Approaches = []Approach{
	{Name: "original polling", QuotedLoMs: 600, QuotedHiMs: 1000, Strategies: []string{"busyloop", "poll"},
		Why: "a listing loop adds at most one interval (busyloop: one round trip) to CVAT's own creation time, so its end-to-end figure is mostly the server's"},
	{Name: "synchronous SDK wait", QuotedLoMs: 500, QuotedHiMs: 800, Strategies: []string{"sdk", "cli"},
		Why: "cvat-sdk reads the request at once and then every status_check_period (5 s by default): unless the creation is done by the first read, it returns no sooner than one period after the upload, whatever the server"},
	{Name: "asynchronous notification / backoff", QuotedLoMs: 100, QuotedHiMs: 300, Strategies: []string{"webhook", "backoff", "adaptive", "ui"},
		Why: "notification and backoff cut the wait after the commit, never the creation itself: end to end stays above CVAT's processing time"},
	{Name: "server-side change (pre-allocated job IDs)", QuotedHiMs: 100, Strategies: []string{"prealloc"},
		Why: "no CVAT release pre-allocates job IDs: prealloc runs only against the emulator's what-if (--sim-what-if prealloc-jobs)"},
}

// SeedRow is one approach against the run: its fastest strategy by end-to-end p50.
type SeedRow struct {
	Approach   Approach
	Best       *Row // nil: no strategy of the approach ran (or none finished a trial)
	Strategies int  // rows of the run in the approach
}

// SeedTable lines the write-up's approaches up with s's rows; rows of a sweep are all candidates.
func SeedTable(s *Summary) []SeedRow {
	out := make([]SeedRow, 0, len(Approaches))
	for _, a := range Approaches {
		sr := SeedRow{Approach: a}
		for i := range s.Rows {
			row := &s.Rows[i]
			name, _, _ := strings.Cut(row.Strategy, ":")
			if !contains(a.Strategies, name) {
				continue
			}
			sr.Strategies++
			p50, ok := row.EndToEnd.At(50)
			if !ok {
				continue
			}
			if best, _ := bestP50(sr.Best); sr.Best == nil || p50 < best {
				sr.Best = row
			}
		}
		out = append(out, sr)
	}
	return out
}

func bestP50(r *Row) (float64, bool) {
	if r == nil {
		return 0, false
	}
	return r.EndToEnd.At(50)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// quoted formats an approach's range in seconds.
func (a Approach) quoted() string {
	if a.QuotedLoMs == 0 {
		return "< " + strconv.FormatFloat(a.QuotedHiMs/1000, 'f', 3, 64)
	}
	return strconv.FormatFloat(a.QuotedLoMs/1000, 'f', 3, 64) + "–" + strconv.FormatFloat(a.QuotedHiMs/1000, 'f', 3, 64)
}

// verdict places a measured end-to-end p50 against the quoted range.
func (a Approach) verdict(ms float64) string {
	switch {
	case ms < a.QuotedLoMs:
		return "faster than quoted"
	case ms > a.QuotedHiMs:
		return fmt.Sprintf("%.1f× the quoted top", ms/a.QuotedHiMs)
	default:
		return "within"
	}
}

// seedCells lays out one seed row: approach, quote, strategy, e2e p50, detection p50, requests, verdict.
func seedCells(s *Summary, sr SeedRow) []string {
	cells := []string{sr.Approach.Name, sr.Approach.quoted()}
	if sr.Best == nil {
		return append(cells, "not run", "n/a", "n/a", "n/a", "")
	}
	name := sr.Best.Strategy + cellName(s, *sr.Best)
	if sr.Strategies > 1 {
		name += fmt.Sprintf(" (best of %d)", sr.Strategies)
	}
	p50, _ := sr.Best.EndToEnd.At(50)
	return append(cells, name, secs(p50, true), secs(sr.Best.Detection.At(50)),
		strconv.FormatFloat(sr.Best.RequestsMean, 'f', 1, 64), sr.Approach.verdict(p50))
}

var seedHeader = []string{"approach (#9073 write-up)", "quoted_s", "strategy here", "p50_s", "detect_p50_s", "req_mean", "against the quote"}

// seedNotes say what the figures measure and, per approach that ran, why they differ from the quote.
func seedNotes(s *Summary, rows []SeedRow) []string {
	notes := []string{fmt.Sprintf("the write-up quotes its ranges without a method or a server; ours are end to end "+
		"(create sent → job IDs known, upload included) on %s, and detect_p50 is what the wait adds after the jobs were visible",
		cmpOr(s.Server, "an unnamed server"))}
	for _, sr := range rows {
		switch {
		case sr.Best != nil:
			notes = append(notes, sr.Approach.Name+": "+sr.Approach.Why)
		case contains(sr.Approach.Strategies, "prealloc") && strings.HasPrefix(s.Server, "emulator"):
			notes = append(notes, sr.Approach.Name+": no CVAT release has it; a run with --sim-what-if prealloc-jobs "+
				"--strategies prealloc measures what the emulator's what-if would give, to set beside this run")
		}
	}
	return notes
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// showSeedTable: the section is printed when the run covers at least two approaches.
func showSeedTable(rows []SeedRow) bool {
	n := 0
	for _, sr := range rows {
		if sr.Best != nil {
			n++
		}
	}
	return n >= 2
}

// seedTable renders the section after the main table, in the main table's style.
func seedTable(w io.Writer, s *Summary, markdown bool) error {
	rows := SeedTable(s)
	if !showSeedTable(rows) {
		return nil
	}
	if _, err := io.WriteString(w, "\nThe four approaches of the cvat-ai/cvat#9073 write-up, measured:\n"); err != nil {
		return err
	}
	align := tw.Alignment{tw.AlignLeft, tw.AlignRight, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignLeft}
	t := tablewriter.NewTable(w, tablewriter.WithRenderer(newRenderer(markdown)),
		tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithAlignment(align))
	t.Header(seedHeader)
	for _, sr := range rows {
		cells := seedCells(s, sr)
		for i := range cells {
			cells[i] = cell(cells[i], markdown)
		}
		if err := t.Append(cells); err != nil {
			return fmt.Errorf("seed table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("render seed table: %w", err)
	}
	notes := seedNotes(s, rows)
	prefix := ""
	if markdown {
		prefix = "- "
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
	}
	for _, n := range notes {
		if _, err := io.WriteString(w, prefix+n+"\n"); err != nil {
			return err
		}
	}
	return nil
}
