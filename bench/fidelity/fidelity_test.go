package fidelity_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cvatbench/cvatbench/bench/fidelity"
)

type reference struct {
	Generator string `json:"generator"`
	Pairs     []struct {
		Name   string   `json:"name"`
		SSIM   float64  `json:"ssim"`
		PSNRdB *float64 `json:"psnr_db"` // null: infinite
	} `json:"pairs"`
}

func loadPlane(t testing.TB, path string) *fidelity.Plane {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return fidelity.Luma(img)
}

// The reference values come from scikit-image (testdata/make_reference.py) for the same 8-bit inputs.
func TestAgainstScikitImage(t *testing.T) {
	raw, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Pairs) < 8 {
		t.Fatalf("reference has %d pairs", len(ref.Pairs))
	}
	for _, p := range ref.Pairs {
		t.Run(p.Name, func(t *testing.T) {
			a := loadPlane(t, filepath.Join("testdata", p.Name+".a.png"))
			b := loadPlane(t, filepath.Join("testdata", p.Name+".b.png"))
			s, err := fidelity.SSIM(a, b)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(s-p.SSIM) > 1e-9 {
				t.Errorf("SSIM %.12f, %s gives %.12f", s, ref.Generator, p.SSIM)
			}
			mse, err := fidelity.MSE(a, b)
			if err != nil {
				t.Fatal(err)
			}
			psnr := fidelity.PSNR(mse)
			switch {
			case p.PSNRdB == nil && !math.IsInf(psnr, 1):
				t.Errorf("PSNR %v, want +Inf", psnr)
			case p.PSNRdB != nil && math.Abs(psnr-*p.PSNRdB) > 1e-9:
				t.Errorf("PSNR %.12f dB, %s gives %.12f", psnr, ref.Generator, *p.PSNRdB)
			}
		})
	}
}

func TestSSIMIsSymmetricAndSplitIndependent(t *testing.T) {
	a := loadPlane(t, "testdata/jpeg-q10.a.png")
	b := loadPlane(t, "testdata/jpeg-q10.b.png")
	ab, _ := fidelity.SSIM(a, b)
	ba, _ := fidelity.SSIM(b, a)
	if ab != ba {
		t.Errorf("SSIM(a,b) %v != SSIM(b,a) %v", ab, ba)
	}
	prev := runtime.GOMAXPROCS(1)
	one, _ := fidelity.SSIM(a, b)
	runtime.GOMAXPROCS(prev)
	if math.Abs(one-ab) > 1e-12 {
		t.Errorf("one band %v, several %v", one, ab)
	}
}

func TestRejectsMismatchedAndTinyPlanes(t *testing.T) {
	a := &fidelity.Plane{W: 12, H: 12, Pix: make([]uint8, 144)}
	b := &fidelity.Plane{W: 12, H: 11, Pix: make([]uint8, 132)}
	if _, err := fidelity.SSIM(a, b); err == nil {
		t.Error("SSIM of 12x12 against 12x11: no error")
	}
	if _, err := fidelity.MSE(a, b); err == nil {
		t.Error("MSE of 12x12 against 12x11: no error")
	}
	tiny := &fidelity.Plane{W: 10, H: 40, Pix: make([]uint8, 400)}
	if _, err := fidelity.SSIM(tiny, tiny); err == nil {
		t.Error("SSIM of a 10-pixel-wide plane: no error")
	}
	if _, err := fidelity.SSIM(a, &fidelity.Plane{W: 12, H: 12, Pix: make([]uint8, 3)}); err == nil {
		t.Error("malformed plane: no error")
	}
}

// Luma of a decoded JPEG is its Y plane, and Luma of the RGB image it was encoded from is the same
// conversion the encoder applied: a grey image survives both paths unchanged.
func TestLumaPaths(t *testing.T) {
	rgba := image.NewRGBA(image.Rect(0, 0, 16, 16))
	gray := image.NewGray(rgba.Bounds())
	for y := range 16 {
		for x := range 16 {
			v := uint8(x*16 + y)
			rgba.SetRGBA(x, y, color.RGBA{v, v, v, 255})
			gray.SetGray(x, y, color.Gray{v})
		}
	}
	lr, lg := fidelity.Luma(rgba), fidelity.Luma(gray)
	if !bytes.Equal(lr.Pix, lg.Pix) {
		t.Fatal("grey RGBA and Gray give different luma")
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, rgba, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	dec, err := jpeg.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := dec.(*image.YCbCr); !ok {
		t.Skipf("decoder returned %T", dec) // grey JPEGs decode as *image.Gray; still covered above
	}
	mse, _ := fidelity.MSE(lr, fidelity.Luma(dec))
	if mse > 1 {
		t.Errorf("q100 JPEG luma MSE %v against its source", mse)
	}
	// A sub-image keeps its own origin.
	sub := rgba.SubImage(image.Rect(4, 4, 12, 12))
	ls := fidelity.Luma(sub)
	if ls.W != 8 || ls.Pix[0] != lr.Pix[4*16+4] {
		t.Errorf("sub-image luma %dx%d starts %d, want 8 wide starting %d", ls.W, ls.H, ls.Pix[0], lr.Pix[4*16+4])
	}
}

func BenchmarkSSIM640x480(b *testing.B) {
	a := &fidelity.Plane{W: 640, H: 480, Pix: make([]uint8, 640*480)}
	c := &fidelity.Plane{W: 640, H: 480, Pix: make([]uint8, 640*480)}
	for i := range a.Pix {
		a.Pix[i] = uint8(i * 7)
		c.Pix[i] = uint8(i*7 + i%5)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fidelity.SSIM(a, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSSIM640x480OneCore(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	BenchmarkSSIM640x480(b)
}
