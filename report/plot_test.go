package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestWritePlots(t *testing.T) {
	tests := []struct {
		name      string
		qualities []int
		want      []string
	}{
		{"single quality", []int{70}, []string{"bound", "frontier", "percentiles"}},
		{"sweep", []int{30, 90}, []string{"bound", "frontier", "percentiles", "quality"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			paths, err := WritePlots(fixtureRun(tc.qualities), dir)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, n := range tc.want {
				for _, ext := range PlotFormats {
					want = append(want, filepath.Join(dir, PlotsDir, n+"."+ext))
				}
			}
			if !slices.Equal(paths, want) {
				t.Fatalf("paths %v, want %v", paths, want)
			}
			for _, p := range paths {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				switch filepath.Ext(p) {
				case ".png":
					img, err := png.Decode(bytes.NewReader(b))
					if err != nil {
						t.Fatalf("%s: %v", p, err)
					}
					if r := img.Bounds(); r.Dx() < 100 || r.Dy() < 100 {
						t.Errorf("%s: %v", p, r)
					}
				case ".svg":
					if root := xmlRoot(t, b); root != "svg" {
						t.Errorf("%s: root element %q", p, root)
					}
				}
			}
		})
	}
}

// The bound plot draws the pooled bound over every ok trial's upload→visible time and a point per strategy
// with a mean detection delay.
func TestBoundPlotDrawsTheBound(t *testing.T) {
	for _, qualities := range [][]int{{70}, {30, 90}} {
		p, err := boundPlot(fixtureRun(qualities))
		if err != nil {
			t.Fatal(err)
		}
		b, err := renderPlot(p, "svg")
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("optimal fixed schedule (%d trials)", 20*len(qualities))
		for _, s := range []string{want, ">poll<", ">sdk<"} {
			if !bytes.Contains(b, []byte(s)) {
				t.Errorf("qualities %v: the plot lacks %q", qualities, s)
			}
		}
		if bytes.Contains(b, []byte(">ui<")) {
			t.Errorf("ui has no ok trial but is drawn")
		}
	}
}

// xmlRoot parses b fully as XML and returns the name of its root element.
func xmlRoot(t *testing.T, b []byte) string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return root
		}
		if err != nil {
			t.Fatalf("not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
}

func TestPercentileTicks(t *testing.T) {
	var labels []string
	for _, tk := range percentileTicks(10000) {
		labels = append(labels, tk.Label)
	}
	if got := strings.Join(labels, " "); got != "0% 90% 99% 99.9% 99.99%" {
		t.Errorf("ticks %q", got)
	}
}

// resourceRef finds attributes or CSS that would make a browser fetch something.
var resourceRef = regexp.MustCompile(`(?i)(\b(src|href|action|poster|data)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//|@import)`)

func TestHTMLIsSelfContained(t *testing.T) {
	run := fixtureRun([]int{30, 90})
	run.Meta.Target = "https://cvat.example.org" // text mentioning a URL is fine
	dir := t.TempDir()
	path, err := WriteHTML(run, dir, Options{Percentiles: []float64{50, 99}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if m := resourceRef.FindString(page); m != "" {
		t.Errorf("external resource reference %q", m)
	}
	for _, tag := range []string{"<script", "<link", "<img", "<iframe"} {
		if strings.Contains(page, tag) {
			t.Errorf("page contains %s", tag)
		}
	}
	if n := strings.Count(page, "<svg"); n != 4 {
		t.Errorf("%d inline SVGs, want 4 (percentiles, frontier, bound, quality)", n)
	}
	if strings.Contains(page, "<?xml") {
		t.Error("XML declaration left inside HTML")
	}
	for _, want := range []string{"<th>strategy</th>", "cvat-ai/cvat#9073 write-up, measured</h2>", "<td>original polling</td>", `<th class="num">p99_s</th>`, "20261127T001500Z-3f9a",
		"https://cvat.example.org", "errors sdk q30: timeout=1", "<td>poll</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The page is well-formed enough for an XML parser once the doctype is gone (void <meta> aside).
	body := page[strings.Index(page, "<body>") : strings.Index(page, "</body>")+len("</body>")]
	if root := xmlRoot(t, []byte(body)); root != "body" {
		t.Errorf("body root %q", root)
	}
}

func TestResourceRefCatchesReferences(t *testing.T) {
	for _, s := range []string{`<img src="https://x/y.png">`, `<link href='//cdn/x.css'>`, `style="background:url(http://x)"`,
		`<use xlink:href="https://x#a"/>`, `@import "x.css"`} {
		if !resourceRef.MatchString(s) {
			t.Errorf("missed %s", s)
		}
	}
	for _, s := range []string{`xmlns="http://www.w3.org/2000/svg"`, `<dd>https://cvat.example.org</dd>`} {
		if resourceRef.MatchString(s) {
			t.Errorf("false alarm on %s", s)
		}
	}
}
