package report

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/record"
)

// FuzzReadTrials feeds arbitrary trials.jsonl content to ReadTrials: it must return an error or records,
// never panic; a cut-off last line is flagged only when the data does not end with a newline; records
// written back read back the same; and the summary of whatever was read never panics.
func FuzzReadTrials(f *testing.F) {
	f.Add([]byte(`{"run_id":"r","seq":0,"strategy":"poll","image_quality":70,"images":1,"segment_size":0,"result":"ok","job_ids":[1],"end_to_end_ms":12.5,"detection_delay_ms":1.5,"requests":3}` + "\n"))
	f.Add([]byte(`{"run_id":"r","seq":0,"strategy":"poll","result":"error","error_class":"timeout","requests":0}` + "\n" + `{"run_id":"r","seq":1,"strat`))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"end_to_end_ms":-1,"strategy":"poll","result":"ok"}` + "\n"))
	f.Add([]byte(`{"end_to_end_ms":1e308,"strategy":"poll","result":"ok","image_quality":-5}` + "\n"))
	f.Add([]byte(`{"jobs_obtained_at":"not a time"}` + "\n"))
	f.Add([]byte(`[1,2,3]` + "\n"))
	f.Add([]byte("{}\r\n{}"))
	f.Add([]byte{0xff, 0xfe, '\n'})

	f.Fuzz(func(t *testing.T, data []byte) {
		trials, truncated, err := ReadTrials(bytes.NewReader(data))
		if err != nil {
			return
		}
		if truncated && bytes.HasSuffix(data, []byte("\n")) {
			t.Fatal("truncated although the data ends with a newline")
		}
		if n := bytes.Count(data, []byte("\n")) + 1; len(trials) > n {
			t.Fatalf("%d records from %d lines", len(trials), n)
		}
		var again bytes.Buffer
		for _, tr := range trials {
			b, err := json.Marshal(tr)
			if err != nil {
				t.Fatalf("record read but not writable: %v", err)
			}
			again.Write(append(b, '\n'))
		}
		back, trunc2, err := ReadTrials(&again)
		if err != nil || trunc2 || len(back) != len(trials) {
			t.Fatalf("round trip: %d records, truncated %v, err %v; first pass %d", len(back), trunc2, err, len(trials))
		}
		strategies := map[string]bool{}
		var names []string
		for _, tr := range trials {
			if !strategies[tr.Strategy] {
				strategies[tr.Strategy] = true
				names = append(names, tr.Strategy)
			}
		}
		run := &Run{Meta: record.Meta{RunID: "fuzz", Config: bench.Config{Strategies: names}}, Trials: trials}
		_, _ = Summarize(run, DefaultPercentiles) // an error is fine, a panic is not
	})
}
