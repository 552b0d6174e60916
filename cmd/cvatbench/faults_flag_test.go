package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestBadFaultSpecIsUsageError: a bad --faults or --sim-faults exits 2 with one line naming the valid keys,
// before anything listens or runs.
func TestBadFaultSpecIsUsageError(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"sim unknown key", []string{"sim", "--addr", "127.0.0.1:0", "--faults", "http5xx=0.1,bogus=1"}, "valid: http5xx, http429"},
		{"sim out of range", []string{"sim", "--addr", "127.0.0.1:0", "--faults", "reset=2"}, "not a number in [0, 1]"},
		{"sim bad duration", []string{"sim", "--addr", "127.0.0.1:0", "--faults", "spike=0.1:soon"}, "positive Go duration"},
		{"run unknown profile", []string{"run", "--sim-profile", "instant", "--sim-faults", "flakey", "--out", "OUT"}, "profiles: chaos, flaky, none"},
		{"run with url", []string{"run", "--url", "http://127.0.0.1:1", "--token", "x", "--sim-faults", "flaky", "--out", "OUT"}, "needs the embedded emulator"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"cvatbench"}, tc.args...)
			for i, a := range args {
				if a == "OUT" {
					args[i] = t.TempDir()
				}
			}
			code := run(context.Background(), args, &stdout, &stderr)
			out := strings.TrimRight(stderr.String(), "\n")
			if code != exitUsage || strings.Count(out, "\n") != 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and one line containing %q", code, out, exitUsage, tc.want)
			}
		})
	}
}
