package bench

import (
	"bytes"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateImages(t *testing.T) {
	tests := []struct {
		format, ext, decoded string
	}{
		{"jpeg", ".jpg", "jpeg"},
		{"png", ".png", "png"},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			a, err := GenerateImages(3, 32, 24, tc.format, 7)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := GenerateImages(3, 32, 24, tc.format, 7)
			c, _ := GenerateImages(3, 32, 24, tc.format, 8)
			for i := range a {
				if !bytes.Equal(a[i].Data, b[i].Data) || a[i].Name != b[i].Name {
					t.Errorf("image %d differs for the same seed", i)
				}
				if bytes.Equal(a[i].Data, c[i].Data) {
					t.Errorf("image %d equal for different seeds", i)
				}
				if !strings.HasSuffix(a[i].Name, tc.ext) {
					t.Errorf("name %q", a[i].Name)
				}
				cfg, format, err := image.DecodeConfig(bytes.NewReader(a[i].Data))
				if err != nil || format != tc.decoded || cfg.Width != 32 || cfg.Height != 24 {
					t.Errorf("image %d decodes as %s %dx%d, %v", i, format, cfg.Width, cfg.Height, err)
				}
			}
			if bytes.Equal(a[0].Data, a[1].Data) {
				t.Error("images of one task are identical")
			}
		})
	}
	if _, err := GenerateImages(1, 1, 1, "bmp", 1); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestReadImagesDir(t *testing.T) {
	imgs, err := GenerateImages(3, 4, 4, "png", 1)
	if err != nil {
		t.Fatal(err)
	}
	write := func(dir, name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := t.TempDir()
	write(good, "b.png", imgs[1].Data)
	write(good, "a.png", imgs[0].Data)
	write(good, "c.png", imgs[2].Data)
	if err := os.Mkdir(filepath.Join(good, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(good, ".LICENSES.txt", []byte("CC0")) // hidden: skipped, as the photo cache needs
	write(good, ".DS_Store", []byte{0, 0, 0, 1})
	bad := t.TempDir()
	write(bad, "a.png", imgs[0].Data)
	write(bad, "notes.txt", []byte("hello"))

	tests := []struct {
		name    string
		dir     string
		n       int
		want    []string
		wantErr string
	}{
		{"all, sorted", good, 0, []string{"a.png", "b.png", "c.png"}, ""},
		{"first two", good, 2, []string{"a.png", "b.png"}, ""},
		{"more than present", good, 4, nil, "holds 3 files, 4 requested"},
		{"non-image rejected", bad, 0, nil, "notes.txt is not an image"},
		{"missing dir", filepath.Join(good, "nope"), 0, nil, "read images dir"},
		{"empty dir", t.TempDir(), 0, nil, "holds no files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, err := ReadImagesDir(tc.dir, tc.n)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range files {
				names = append(names, f.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Errorf("names %v, want %v", names, tc.want)
			}
		})
	}
}
