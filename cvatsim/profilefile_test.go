package cvatsim_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/cvatsim"
)

// filled returns a profile with every field set to a distinct non-zero value, found by reflection, so a
// field the term table forgets fails the round trip.
func filled(t *testing.T) cvatsim.Profile {
	t.Helper()
	var p cvatsim.Profile
	n := 0
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		n++
		switch v.Kind() {
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				fill(v.Field(i))
			}
		case reflect.Int64: // time.Duration
			v.SetInt(int64(n) * int64(time.Millisecond))
		case reflect.Int:
			v.SetInt(int64(n))
		case reflect.Float64:
			v.SetFloat(float64(n) / 100)
		case reflect.String:
			v.SetString("filled")
		case reflect.Map:
			v.Set(reflect.ValueOf(cvatsim.QualityCost{10: time.Duration(n) * time.Millisecond, 95: time.Duration(n+1) * time.Millisecond}))
		default:
			t.Fatalf("field kind %v not covered by the test", v.Kind())
		}
	}
	fill(reflect.ValueOf(&p).Elem())
	p.Background.ArrivalsPerSecond = 0.01 // keep the load feasible for Validate
	return p
}

func roundTrip(t *testing.T, p cvatsim.Profile) cvatsim.Profile {
	t.Helper()
	var buf bytes.Buffer
	if err := cvatsim.WriteProfile(&buf, cvatsim.ProfileFileOf(p, "test")); err != nil {
		t.Fatal(err)
	}
	pf, err := cvatsim.ParseProfile(&buf)
	if err != nil {
		t.Fatalf("parse of written profile: %v\n%s", err, buf.String())
	}
	return pf.Terms
}

func TestProfileFileRoundTripsEveryField(t *testing.T) {
	p := filled(t)
	if got := roundTrip(t, p); !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip changed the profile:\n got %+v\nwant %+v", got, p)
	}
	for _, name := range cvatsim.ProfileNames() {
		t.Run(name, func(t *testing.T) {
			p, err := cvatsim.LookupProfile(name)
			if err != nil {
				t.Fatal(err)
			}
			got := roundTrip(t, p)
			if len(p.PreviewPerFrame) == 0 && len(got.PreviewPerFrame) == 0 {
				got.PreviewPerFrame = p.PreviewPerFrame // nil and empty are the same cost
			}
			if !reflect.DeepEqual(got, p) {
				t.Fatalf("round trip changed %s:\n got %+v\nwant %+v", name, got, p)
			}
		})
	}
}

// editProfile writes the built-in profile as a file, applies edit to its decoded JSON and parses it again.
func editProfile(t *testing.T, edit func(m map[string]any)) error {
	t.Helper()
	p, _ := cvatsim.LookupProfile("cvat-default")
	var buf bytes.Buffer
	if err := cvatsim.WriteProfile(&buf, cvatsim.ProfileFileOf(p, "")); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ := json.Marshal(m)
	_, err := cvatsim.ParseProfile(bytes.NewReader(b))
	return err
}

func TestParseProfileRefusesBadFiles(t *testing.T) {
	termsOf := func(m map[string]any) map[string]any { return m["terms"].(map[string]any) }
	tests := []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"unknown term", func(m map[string]any) { termsOf(m)["pick_up"] = "1ms" }, `unknown term "pick_up"`},
		{"unknown top-level key", func(m map[string]any) { m["extra"] = 1 }, `unknown key "extra"`},
		{"missing term", func(m map[string]any) { delete(termsOf(m), "per_job") }, `missing term "per_job"`},
		{"negative duration", func(m map[string]any) { termsOf(m)["per_image"] = "-1ms" }, `term "per_image": `},
		{"negative dist part", func(m map[string]any) { termsOf(m)["pickup"].(map[string]any)["median"] = "-3ms" }, `term "pickup"`},
		{"dist without sigma", func(m map[string]any) { delete(termsOf(m)["processing"].(map[string]any), "sigma") }, `term "processing"`},
		{"not a duration", func(m map[string]any) { termsOf(m)["webhook_hop"] = "fast" }, `term "webhook_hop"`},
		{"number instead of duration", func(m map[string]any) { termsOf(m)["webhook_hop"] = 50 }, `term "webhook_hop"`},
		{"quality out of range", func(m map[string]any) { termsOf(m)["preview_per_frame"] = map[string]any{"101": "1ms"} }, `101`},
		{"wrong schema", func(m map[string]any) { m["schema"] = "cvatbench.profile/v0" }, `cvatbench.profile/v1`},
		{"missing schema", func(m map[string]any) { delete(m, "schema") }, `missing "schema"`},
		{"negative workers", func(m map[string]any) { termsOf(m)["import_workers"] = -2 }, `term "import_workers"`},
		{"overloaded background", func(m map[string]any) {
			termsOf(m)["background_arrivals_per_second"] = 100
			termsOf(m)["background_service"] = map[string]any{"base": "1s", "median": "0s", "sigma": 0, "cap": "0s"}
		}, `grow without bound`},
		{"background without service", func(m map[string]any) { termsOf(m)["background_arrivals_per_second"] = 1 }, `positive background_service`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := editProfile(t, tc.edit)
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line containing %q", msg, tc.want)
			}
		})
	}
	if err := editProfile(t, func(map[string]any) {}); err != nil {
		t.Fatalf("unedited file refused: %v", err)
	}
}

func TestLoadProfileReadsFilesAndNames(t *testing.T) {
	p, err := cvatsim.LoadProfile("cvat-queued")
	if err != nil || p.Name != "cvat-queued" {
		t.Fatalf("built-in: %v %v", p.Name, err)
	}
	want := filled(t)
	want.Name = "mine"
	path := filepath.Join(t.TempDir(), "mine.json")
	var buf bytes.Buffer
	if err := cvatsim.WriteProfile(&buf, cvatsim.ProfileFileOf(want, "")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := cvatsim.LoadProfile(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("file: %v\n got %+v\nwant %+v", err, got, want)
	}
	if _, err := cvatsim.LoadProfile("nosuch"); err == nil || !strings.Contains(err.Error(), "cvat-default") {
		t.Fatalf("unknown name: %v", err)
	}
	if _, err := cvatsim.LoadProfile(filepath.Join(t.TempDir(), "absent.json")); err == nil {
		t.Fatal("absent file accepted")
	}
}

// TestProfileFileDocCoversEveryTerm keeps docs/profile-file.md in step with the term table.
func TestProfileFileDocCoversEveryTerm(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "profile-file.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range cvatsim.TermKeys() {
		if !strings.Contains(string(doc), "| `"+key+"` |") {
			t.Errorf("docs/profile-file.md has no row for term %q", key)
		}
	}
	if !strings.Contains(string(doc), cvatsim.ProfileSchema) {
		t.Errorf("docs/profile-file.md does not name the schema %s", cvatsim.ProfileSchema)
	}
}
