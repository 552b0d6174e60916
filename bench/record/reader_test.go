package record

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecodeTrialMatchesStd: the fast decoder must agree with encoding/json on every line, valid or not,
// since ReadTrials promises encoding/json's verdicts.
func FuzzDecodeTrialMatchesStd(f *testing.F) {
	for _, s := range []string{
		`{"run_id":"r","seq":1,"strategy":"poll","result":"ok","job_ids":[1,2],"create_sent_at":"2026-12-03T10:00:00.123456789Z"}`,
		`{"seq":1.5}`, `{"seq":"1"}`, `{"run_id":"r"} x`, `{"run_id":"\xff"}`, `null`, `{}`, `[]`, `{"job_ids":null}`,
		`{"run_id":"r","run_id":"s"}`, `{"requests_by_endpoint":{"GET /api/jobs 200":3}}`, `{"create_sent_at":"yesterday"}`,
		`{"chunks":{"mode":"first","psnr_db":[null,31.5],"ssim":[1]}}`, `{"seq":9223372036854775808}`, `{"Seq":3}`,
		`{"end_to_end_ms":1e400}`, `{"unknown_field":1}`, " {\"seq\":2} ",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var fast, std Trial
		ferr := decodeTrial(line, &fast)
		serr := json.Unmarshal(line, &std)
		if (ferr == nil) != (serr == nil) {
			t.Fatalf("line %q: fast error %v, encoding/json error %v", line, ferr, serr)
		}
		if serr == nil && !reflect.DeepEqual(fast, std) {
			t.Fatalf("line %q decodes differently:\nfast %+v\nstd  %+v", line, fast, std)
		}
		if serr != nil && ferr.Error() != serr.Error() {
			t.Fatalf("line %q: error %q, want encoding/json's %q", line, ferr, serr)
		}
	})
}

func TestReadTrialsBlocksKeepOrderAndLines(t *testing.T) {
	var b strings.Builder
	const n = 30000 // several 1 MiB blocks
	for i := range n {
		b.WriteString(`{"run_id":"r","seq":` + strings.Repeat(" ", i%3) + strconv.Itoa(i) + `,"strategy":"poll","result":"ok"}` + "\n")
		if i%1000 == 0 {
			b.WriteString("\n") // blank lines are skipped but counted
		}
	}
	// Without a size hint, with the right one, one too small (the rest in blocks of their own) and one too
	// large: the same trials in the same order.
	for _, hint := range []int{0, n, n / 3, 2 * n} {
		trials, truncated, err := ReadTrialsN(strings.NewReader(b.String()), hint)
		if err != nil || truncated || len(trials) != n {
			t.Fatalf("hint %d: %d trials, truncated %v, %v", hint, len(trials), truncated, err)
		}
		for i, tr := range trials {
			if tr.Seq != i {
				t.Fatalf("hint %d: trial %d has seq %d", hint, i, tr.Seq)
			}
		}
	}
	bad := b.String() + `{"seq":"x"}` + "\n" + `{"seq":1}` + "\n"
	if _, _, err := ReadTrials(strings.NewReader(bad)); err == nil || !strings.HasPrefix(err.Error(), "line 30031: ") {
		t.Errorf("error %v, want it at line 30031 (30,000 trials and 30 blank lines before it)", err)
	}
	cut := b.String() + `{"run_id":"r","se`
	for _, hint := range []int{0, n + 1} {
		if trials, truncated, err := ReadTrialsN(strings.NewReader(cut), hint); err != nil || !truncated || len(trials) != n || trials[n-1].Seq != n-1 {
			t.Errorf("hint %d, cut last line: %d trials, truncated %v, %v", hint, len(trials), truncated, err)
		}
	}
}
