package fidelity

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// SSIM constants of Wang, Bovik, Sheikh and Simoncelli, "Image quality assessment: from error visibility to
// structural similarity", IEEE TIP 13(4), 2004, as in their reference ssim_index.m: an 11×11 circular-symmetric
// Gaussian window with σ = 1.5 (normalised to sum 1), K1 = 0.01, K2 = 0.03, L = 255, population (not sample)
// variances, the map evaluated only where the window fits inside the image ("valid"), and the mean of the map
// as the index. No downsampling. scikit-image's structural_similarity gives the same number with
// gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255.
const (
	SSIMWindow = 2*ssimRadius + 1
	ssimRadius = 5
	ssimSigma  = 1.5
	ssimK1     = 0.01
	ssimK2     = 0.03
)

var (
	ssimC1      = (ssimK1 * peak) * (ssimK1 * peak)
	ssimC2      = (ssimK2 * peak) * (ssimK2 * peak)
	ssimWeights = gaussianWeights(ssimRadius, ssimSigma)
)

func gaussianWeights(radius int, sigma float64) [2*ssimRadius + 1]float64 {
	var w [2*ssimRadius + 1]float64
	sum := 0.0
	for k := -radius; k <= radius; k++ {
		w[k+radius] = math.Exp(-float64(k*k) / (2 * sigma * sigma))
		sum += w[k+radius]
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// The five filtered maps the index needs: means of a and b, and of a², b² and a·b.
const (
	mapA = iota
	mapB
	mapAA
	mapBB
	mapAB
	nMaps
)

// SSIM is the mean structural similarity of b against a (see the constants above): 1 for identical planes.
// Planes smaller than the window in either side are an error. The work is split over up to GOMAXPROCS bands of
// rows; the result does not depend on the split.
func SSIM(a, b *Plane) (float64, error) {
	if err := sameSize(a, b); err != nil {
		return 0, err
	}
	if a.W < SSIMWindow || a.H < SSIMWindow {
		return 0, fmt.Errorf("frame %dx%d is smaller than the %dx%d SSIM window", a.W, a.H, SSIMWindow, SSIMWindow)
	}
	outH := a.H - 2*ssimRadius
	bands := min(runtime.GOMAXPROCS(0), max(1, outH/64))
	sums := make([]float64, bands)
	var wg sync.WaitGroup
	for i := range bands {
		lo, hi := outH*i/bands, outH*(i+1)/bands
		wg.Go(func() { sums[i] = ssimBand(a, b, lo, hi) })
	}
	wg.Wait()
	total := 0.0
	for _, s := range sums { // a fixed order, so the sum does not depend on scheduling
		total += s
	}
	return total / float64(outH*(a.W-2*ssimRadius)), nil
}

// ssimBand sums the SSIM map over output rows [lo, hi): output row y is centred on input row y+radius. The
// Gaussian is separable, so each input row is filtered horizontally once into a ring of the last 11 rows, and
// each output row is the vertical weighted sum of that ring.
func ssimBand(a, b *Plane, lo, hi int) float64 {
	w := a.W
	outW := w - 2*ssimRadius
	var ring [SSIMWindow][nMaps][]float64
	for r := range ring {
		for m := range nMaps {
			ring[r][m] = make([]float64, outW)
		}
	}
	var src [nMaps][]float64
	for m := range nMaps {
		src[m] = make([]float64, w)
	}
	filterRow := func(y int, dst *[nMaps][]float64) {
		ra, rb := a.Pix[y*w:(y+1)*w], b.Pix[y*w:(y+1)*w]
		sa, sb, saa, sbb, sab := src[mapA], src[mapB], src[mapAA], src[mapBB], src[mapAB]
		for x := range w {
			va, vb := float64(ra[x]), float64(rb[x])
			sa[x], sb[x], saa[x], sbb[x], sab[x] = va, vb, va*va, vb*vb, va*vb
		}
		for m := range nMaps {
			filter11(dst[m][:outW], src[m])
		}
	}
	for k := range SSIMWindow - 1 {
		filterRow(lo+k, &ring[(lo+k)%SSIMWindow])
	}
	var acc [nMaps][]float64
	for m := range nMaps {
		acc[m] = make([]float64, outW)
	}
	total := 0.0
	for y := lo; y < hi; y++ {
		last := y + SSIMWindow - 1
		filterRow(last, &ring[last%SSIMWindow])
		for m := range nMaps {
			var rows [SSIMWindow][]float64
			for k := range rows {
				rows[k] = ring[(y+k)%SSIMWindow][m]
			}
			filter11Rows(acc[m], &rows)
		}
		ma, mb, maa, mbb, mab := acc[mapA], acc[mapB][:outW], acc[mapAA][:outW], acc[mapBB][:outW], acc[mapAB][:outW]
		for x := range ma {
			mua, mub := ma[x], mb[x]
			va, vb, cov := maa[x]-mua*mua, mbb[x]-mub*mub, mab[x]-mua*mub
			total += (2*mua*mub + ssimC1) * (2*cov + ssimC2) / ((mua*mua + mub*mub + ssimC1) * (va + vb + ssimC2))
		}
	}
	return total
}

// filter11 is the horizontal pass: out[x] = Σ_k w[k]·in[x+k]. The window is symmetric, so taps k and 10-k share
// a multiplication; each output is summed in registers, one store per output.
func filter11(out, in []float64) {
	w0, w1, w2, w3, w4, w5 := ssimWeights[0], ssimWeights[1], ssimWeights[2], ssimWeights[3], ssimWeights[4], ssimWeights[5]
	in = in[:len(out)+2*ssimRadius]
	for x := range out {
		v := in[x : x+SSIMWindow : x+SSIMWindow]
		out[x] = w5*v[5] + w0*(v[0]+v[10]) + w1*(v[1]+v[9]) + w2*(v[2]+v[8]) + w3*(v[3]+v[7]) + w4*(v[4]+v[6])
	}
}

// filter11Rows is the vertical pass: out[x] = Σ_k w[k]·rows[k][x].
func filter11Rows(out []float64, rows *[SSIMWindow][]float64) {
	w0, w1, w2, w3, w4, w5 := ssimWeights[0], ssimWeights[1], ssimWeights[2], ssimWeights[3], ssimWeights[4], ssimWeights[5]
	n := len(out)
	r0, r1, r2, r3, r4, r5 := rows[0][:n], rows[1][:n], rows[2][:n], rows[3][:n], rows[4][:n], rows[5][:n]
	r6, r7, r8, r9, r10 := rows[6][:n], rows[7][:n], rows[8][:n], rows[9][:n], rows[10][:n]
	for x := range out {
		out[x] = w5*r5[x] + w0*(r0[x]+r10[x]) + w1*(r1[x]+r9[x]) + w2*(r2[x]+r8[x]) + w3*(r3[x]+r7[x]) + w4*(r4[x]+r6[x])
	}
}
