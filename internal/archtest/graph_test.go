// Package archtest checks the project's package graph: imports go one way
// (STYLE.md §2), so the client is tested against the wire format and never
// against types it shares with the emulator.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/cvatbench/cvatbench"

// allowed lists, per package, the project packages it may import.
var allowed = map[string][]string{
	"cmd/cvatbench":        {"bench", "bench/record", "bench/prom", "bench/calibrate", "strategies", "report", "cvat", "cvatsim"},
	"bench":                {"strategies", "cvat", "bench/fidelity", "bench/record"},
	"bench/record":         {},
	"bench/fidelity":       {},
	"bench/prom":           {"bench/record", "cvat"},
	"bench/calibrate":      {"bench", "cvat", "cvatsim"},
	"strategies":           {"cvat"},
	"report":               {"bench/record"},
	"cvat":                 {},
	"cvatsim":              {},
	"internal/schemacheck": {},
	"internal/realserver":  {"cvat"},
	"internal/archtest":    {},
}

func TestImportsGoOneWay(t *testing.T) {
	// Stdout only: the go command writes notes such as "go: downloading ..." to stderr.
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}: {{join .Imports " "}}`, module+"/...")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		ok, known := allowed[rel]
		if !known {
			t.Errorf("package %s is not in the allowed graph; add it to archtest with its permitted imports", rel)
			continue
		}
		seen++
		for _, imp := range strings.Fields(imports) {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			if !contains(ok, dep) {
				t.Errorf("%s imports %s, which the package graph forbids", rel, dep)
			}
		}
	}
	if seen == 0 {
		t.Fatal("go list reported no project packages")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
