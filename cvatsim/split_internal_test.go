package cvatsim

import (
	"reflect"
	"testing"
)

func ip(i int) *int { return &i }

func TestSplitSegments(t *testing.T) {
	tests := []struct {
		name     string
		in       splitParams
		want     []segment
		seg, ovl int
	}{
		// The rows of API.md §9.5.
		{"10 images seg 3", splitParams{size: 10, segmentSize: 3}, []segment{{0, 2}, {3, 5}, {6, 8}, {9, 9}}, 3, 0},
		{"10 images seg 0", splitParams{size: 10}, []segment{{0, 9}}, 10, 0},
		{"20-frame video seg 10 auto overlap", splitParams{size: 20, segmentSize: 10, video: true}, []segment{{0, 9}, {5, 14}, {10, 19}}, 10, 5},
		{"8 images seg 5", splitParams{size: 8, segmentSize: 5}, []segment{{0, 4}, {5, 7}}, 5, 0},
		// Edge cases.
		{"seg larger than size", splitParams{size: 4, segmentSize: 100}, []segment{{0, 3}}, 4, 0},
		{"seg equals size", splitParams{size: 4, segmentSize: 4}, []segment{{0, 3}}, 4, 0},
		{"seg 1", splitParams{size: 3, segmentSize: 1}, []segment{{0, 0}, {1, 1}, {2, 2}}, 1, 0},
		{"explicit overlap", splitParams{size: 10, segmentSize: 4, overlap: ip(1)}, []segment{{0, 3}, {3, 6}, {6, 9}}, 4, 1},
		{"overlap capped at seg/2", splitParams{size: 10, segmentSize: 4, overlap: ip(9)}, []segment{{0, 3}, {2, 5}, {4, 7}, {6, 9}}, 4, 2},
		{"video auto overlap with one segment", splitParams{size: 8, segmentSize: 10, video: true}, []segment{{0, 7}}, 8, 0},
		{"audio auto overlap capped", splitParams{size: 10, segmentSize: 4, audio: true}, []segment{{0, 3}, {2, 5}, {4, 7}, {6, 9}}, 4, 2},
		{"explicit overlap 0 on images", splitParams{size: 5, segmentSize: 2, overlap: ip(0)}, []segment{{0, 1}, {2, 3}, {4, 4}}, 2, 0},
		{"job file mapping", splitParams{size: 6, segmentSize: 2, mapping: []int{2, 1, 3}}, []segment{{0, 1}, {2, 2}, {3, 5}}, 0, 0},
		{"one frame", splitParams{size: 1}, []segment{{0, 0}}, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, seg, ovl := splitSegments(tc.in)
			if !reflect.DeepEqual(got, tc.want) || seg != tc.seg || ovl != tc.ovl {
				t.Fatalf("got %v seg %d ovl %d, want %v seg %d ovl %d", got, seg, ovl, tc.want, tc.seg, tc.ovl)
			}
			if n := segmentCount(tc.in); n != len(tc.want) {
				t.Fatalf("segmentCount %d, want %d", n, len(tc.want))
			}
		})
	}
}

func TestSegmentCountHuge(t *testing.T) {
	// 45,000 single-image jobs (API.md §9.5, last row) without building them.
	if n := segmentCount(splitParams{size: 45000, segmentSize: 1}); n != 45000 {
		t.Fatalf("got %d", n)
	}
}

func TestDefaultChunkSize(t *testing.T) {
	tests := []struct {
		w, h, want int
	}{
		{1920, 1080, 36}, {1280, 720, 72}, {640, 480, 72}, {4000, 3000, 6}, {20000, 20000, 2}, {0, 0, 72},
	}
	for _, tc := range tests {
		if got := defaultChunkSize(tc.w, tc.h); got != tc.want {
			t.Errorf("%dx%d: got %d, want %d", tc.w, tc.h, got, tc.want)
		}
	}
}

func TestEncodePyMatchesJSONDumps(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"separators", obj{{"a", 1}, {"b", []any{1, "x"}}}, `{"a": 1, "b": [1, "x"]}`},
		{"string with separators inside", obj{{"s", `a, b: "c"`}}, `{"s": "a, b: \"c\""}`},
		{"non-ascii escaped", "é€😀", `"\u00e9\u20ac\ud83d\ude00"`},
		{"control chars", "a\nb\x01", `"a\nb\u0001"`},
		{"floats", []any{0.0, 1.0, 0.5, 1e-05, 100.0}, `[0.0, 1.0, 0.5, 1e-05, 100.0]`},
		{"null and bools", []any{nil, true, false}, `[null, true, false]`},
		{"empty", obj{{"o", obj{}}, {"l", []any{}}}, `{"o": {}, "l": []}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(encodePy(tc.in)); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	if got := string(encodeDRF(obj{{"a", "é"}, {"p", 0.0}})); got != `{"a":"é","p":0.0}` {
		t.Fatalf("DRF encoding %s", got)
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		accept  string
		html    bool
		errWant string
	}{
		{"", false, ""},
		{"*/*", false, ""},
		{"application/*", false, ""},
		{"application/vnd.cvat+json", false, ""},
		{"application/vnd.cvat+json; version=2.0", false, ""},
		{"application/json", false, "Could not satisfy the request Accept header."},
		{"application/json, text/plain, */*", false, ""},
		{"text/html", true, ""},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true, ""},
		{"application/vnd.cvat+json; version=1.0", false, `Invalid version in "Accept" header.`},
	}
	for _, tc := range tests {
		t.Run(tc.accept, func(t *testing.T) {
			var in []string
			if tc.accept != "" {
				in = []string{tc.accept}
			}
			html, err := negotiate(in)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if html != tc.html || got != tc.errWant {
				t.Fatalf("html %v err %q, want %v %q", html, got, tc.html, tc.errWant)
			}
		})
	}
}
