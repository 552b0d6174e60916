package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvatbench/cvatbench/report"
)

// TestShardProcessesMergeIntoOneRun runs 4 `cvatbench run --shard i/4` processes of one run at once against
// one `cvatbench sim`, then `cvatbench report --merge` of their directories: every shard exits 0 and leaves
// nothing on the server, and the merge holds every trial of the run once, n per strategy the tasks asked
// for. Without one shard the merge still succeeds and names the missing share.
func TestShardProcessesMergeIntoOneRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the cvatbench binary")
	}
	base := safetyStartSim(t, "--profile", "instant", "--password", safetyPassword)
	api := newSafetyAPI(t, base, "admin", safetyPassword)
	out := t.TempDir()
	const runID = "20261203T120000Z-5a4d"
	env := safetyEnv("CVAT_PASSWORD=" + safetyPassword)
	var procs []*safetyProc
	for i := range 4 {
		procs = append(procs, safetyStart(t, env, nil, "run", "--url", base, "--user", "admin", "--shard", fmt.Sprintf("%d/4", i),
			"--run-id", runID, "--tasks", "5", "--strategies", "poll,sdk", "--concurrency", "4", "--images", "2",
			"--image-size", "16x12", "--poll-interval", "5ms", "--sdk-period", "5ms", "--out", out, "-q",
			"--metrics-file", filepath.Join(out, fmt.Sprintf("shard%d.prom", i))))
	}
	for i, p := range procs {
		if code := p.wait(t, safetyExitDeadline); code != 0 {
			t.Fatalf("shard %d exit %d: %s", i, code, p.stderr.String())
		}
	}
	for i := range 4 { // every series of a shard's metrics carries its share
		b, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("shard%d.prom", i)))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if !strings.HasPrefix(line, "#") && !strings.Contains(line, fmt.Sprintf(`shard="%d"`, i)) {
				t.Errorf("shard %d metrics: %q has no shard label", i, line)
				break
			}
		}
	}
	if left := api.leftovers(t); len(left) != 0 {
		t.Errorf("left on the server: %v", left)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, runID+".shard-*-of-4"))
	merged := filepath.Join(t.TempDir(), "merged")
	if code, _, stderr := cvatbench(append([]string{"report", "--merge", "--out", merged}, dirs...)...); code != 0 || len(dirs) != 4 {
		t.Fatalf("merge of %d shards: exit %d, %s", len(dirs), code, stderr)
	}
	run, err := report.Load(merged)
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[int]bool{}
	for _, tr := range run.Trials {
		seqs[tr.Seq] = true
	}
	if len(run.Trials) != 10 || len(seqs) != 10 {
		t.Errorf("merged %d trials with %d seqs, want 10 and 10", len(run.Trials), len(seqs))
	}
	code, stdout, stderr := cvatbench(append([]string{"report", "--merge", "--out", filepath.Join(t.TempDir(), "partial")}, dirs[:3]...)...)
	if code != 0 || !strings.Contains(stdout+stderr, "shard 3/4 missing") {
		t.Errorf("merge without shard 3: exit %d, output:\n%s%s", code, stdout, stderr)
	}
}
