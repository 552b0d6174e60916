package bench

import (
	"archive/zip"
	"bytes"
	"image"
	"image/jpeg"
	"testing"

	"github.com/cvatbench/cvatbench/bench/record"
)

// BenchmarkScoreChunk scores one chunk of 5 frames of 640×480 (decode, luma, MSE, SSIM) against originals
// already cached, as every trial after the first does. B/op is what one probe allocates and drops: nothing
// of the frames is kept, so a long sweep's memory stays flat.
func BenchmarkScoreChunk(b *testing.B) {
	files, err := GenerateImages(5, 640, 480, "jpeg", 1)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, f := range files {
		img, _, err := image.Decode(bytes.NewReader(f.Data))
		if err != nil {
			b.Fatal(err)
		}
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: string(rune('0'+i)) + ".jpeg", Method: zip.Store})
		if err := jpeg.Encode(w, img, &jpeg.Options{Quality: 50}); err != nil {
			b.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	chunk := buf.Bytes()
	originals := newOriginalLumas(files)
	b.ReportAllocs()
	for b.Loop() {
		p := &record.ChunkProbe{}
		if _, err := scoreChunk(chunk, 0, 5, originals, p); err != nil || len(p.SSIM) != 5 {
			b.Fatalf("%v, %d frames", err, len(p.SSIM))
		}
	}
}
