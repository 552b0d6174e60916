package fidelity

import "math"

// peak is the largest 8-bit sample value, the L of PSNR and SSIM.
const peak = 255.0

// MSE is the mean squared error between two planes of the same size.
func MSE(a, b *Plane) (float64, error) {
	if err := sameSize(a, b); err != nil {
		return 0, err
	}
	var sum uint64
	for i, v := range a.Pix {
		d := int(v) - int(b.Pix[i])
		sum += uint64(d * d)
	}
	return float64(sum) / float64(len(a.Pix)), nil
}

// PSNR is 10·log10(255²/mse) in dB; +Inf for identical planes (mse 0).
func PSNR(mse float64) float64 {
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(peak*peak/mse)
}
