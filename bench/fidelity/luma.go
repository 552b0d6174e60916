// Package fidelity scores how much a compressed frame degrades against its original: PSNR and SSIM on luma.
//
// Luma is the JFIF Y channel (ITU-R BT.601 weights 0.299, 0.587, 0.114, rounded to 8 bits), the channel a JPEG
// encoder stores at full resolution, so comparing Y with Y measures what the encoder did and not a colour
// conversion. Decoded JPEGs give their Y plane as it is; other images are converted with color.RGBToYCbCr,
// the conversion Go's JPEG encoder itself applies.
package fidelity

import (
	"fmt"
	"image"
	"image/color"
)

// Plane is an 8-bit luma image, row-major without padding.
type Plane struct {
	W, H int
	Pix  []uint8
}

// Luma extracts the luma plane of img (alpha is ignored, as CVAT's conversion to RGB drops it).
func Luma(img image.Image) *Plane {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	p := &Plane{W: w, H: h, Pix: make([]uint8, w*h)}
	switch m := img.(type) {
	case *image.YCbCr:
		for y := range h {
			copy(p.Pix[y*w:(y+1)*w], m.Y[m.YOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.Gray:
		for y := range h {
			copy(p.Pix[y*w:(y+1)*w], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.RGBA:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				p.Pix[y*w+x], _, _ = color.RGBToYCbCr(row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				p.Pix[y*w+x], _, _ = color.RGBToYCbCr(row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	default:
		for y := range h {
			for x := range w {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				p.Pix[y*w+x], _, _ = color.RGBToYCbCr(c.R, c.G, c.B)
			}
		}
	}
	return p
}

func sameSize(a, b *Plane) error {
	if a.W != b.W || a.H != b.H {
		return fmt.Errorf("frame is %dx%d, its original %dx%d", b.W, b.H, a.W, a.H)
	}
	if len(a.Pix) != a.W*a.H || len(b.Pix) != b.W*b.H {
		return fmt.Errorf("malformed plane")
	}
	return nil
}
