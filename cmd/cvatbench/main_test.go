package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestVersionPrintsVersionAndCommit(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"cvatbench", "--version"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit code %d, stderr %q", code, errOut.String())
	}
	if !strings.Contains(out.String(), "commit ") {
		t.Fatalf("--version output %q lacks the commit", out.String())
	}
}

func TestUnknownFlagIsUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"cvatbench", "--no-such-flag"}, &out, &errOut)
	if code != exitUsage {
		t.Fatalf("exit code %d, want %d", code, exitUsage)
	}
	if lines := strings.Count(strings.TrimSpace(errOut.String()), "\n"); lines > 0 && !strings.Contains(errOut.String(), "cvatbench:") {
		t.Fatalf("stderr %q", errOut.String())
	}
}
