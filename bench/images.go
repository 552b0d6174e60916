package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // accepted in ImagesDir
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
)

// GenerateImages makes n images of w×h pixels in format ("jpeg" or "png"), deterministic in seed: a gradient
// plus noise, so each image has real content (a constant image would compress to nothing and flatter the
// upload) and the same seed uploads the same bytes.
func GenerateImages(n, w, h int, format string, seed int64) ([]cvat.File, error) {
	if n < 1 || w < 1 || h < 1 {
		return nil, fmt.Errorf("generate %d images of %dx%d: counts must be positive", n, w, h)
	}
	ext := map[string]string{"jpeg": ".jpg", "png": ".png"}[format]
	if ext == "" {
		return nil, fmt.Errorf("generate images: unknown format %q", format)
	}
	files := make([]cvat.File, 0, n)
	for i := range n {
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(i)))
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		phase := rng.IntN(256)
		for y := range h {
			for x := range w {
				noise := rng.IntN(32)
				img.SetRGBA(x, y, color.RGBA{
					R: uint8((x*255/max(w-1, 1) + phase + noise) % 256),
					G: uint8((y*255/max(h-1, 1) + noise) % 256),
					B: uint8((i*37 + (x+y)/4 + noise) % 256),
					A: 255,
				})
			}
		}
		var buf bytes.Buffer
		var err error
		if format == "png" {
			err = png.Encode(&buf, img)
		} else {
			err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
		}
		if err != nil {
			return nil, fmt.Errorf("encode image %d: %w", i, err)
		}
		files = append(files, cvat.File{Name: fmt.Sprintf("cvatbench_%04d%s", i, ext), Data: buf.Bytes()})
	}
	return files, nil
}

// ReadImagesDir reads the regular files of dir in name order and returns the first n (all if n is 0). Hidden
// files (".name": .DS_Store, the photo cache's .LICENSES.txt) are skipped; every other file must decode as an
// image (JPEG, PNG or GIF header), and anything else is an error rather than skipped, so a stray file cannot
// silently change the workload.
func ReadImagesDir(dir string, n int) ([]cvat.File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read images dir: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("images dir %s holds no files", dir)
	}
	if n > len(names) {
		return nil, fmt.Errorf("images dir %s holds %d files, %d requested", dir, len(names), n)
	}
	if n > 0 {
		names = names[:n]
	}
	files := make([]cvat.File, 0, len(names))
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read image: %w", err)
		}
		if _, _, err := image.DecodeConfig(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("images dir: %s is not an image: %w", name, err)
		}
		files = append(files, cvat.File{Name: name, Data: b})
	}
	return files, nil
}

// Workload returns the images cfg asks for.
func Workload(cfg Config) ([]cvat.File, error) {
	if cfg.ImagesDir != "" {
		return ReadImagesDir(cfg.ImagesDir, cfg.Images)
	}
	w, h, err := record.ParseImageSize(cfg.ImageSize)
	if err != nil {
		return nil, err
	}
	return GenerateImages(cfg.Images, w, h, cfg.ImageFormat, cfg.Seed)
}
