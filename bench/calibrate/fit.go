package calibrate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cvatbench/cvatbench/cvatsim"
)

// z95 is the two-sided 95 % quantile of the standard normal distribution.
const z95 = 1.959964

// olsFit is an ordinary least-squares fit y = X·beta with the standard error of each coefficient.
type olsFit struct {
	Beta     []float64
	SE       []float64
	Residual float64 // rms of the residuals
	N        int
}

// ols fits y on the columns of x (rows are samples). It solves the normal equations by Gauss–Jordan
// elimination with partial pivoting, which is exact enough for the handful of well-scaled columns the
// calibration uses; cost is linear in the number of samples. A column that the design does not vary (a
// singular system) is an error naming it.
func ols(x [][]float64, y []float64, names []string) (olsFit, error) {
	n := len(y)
	if n == 0 || len(x) != n {
		return olsFit{}, errors.New("no samples")
	}
	k := len(x[0])
	if n <= k {
		return olsFit{}, fmt.Errorf("%d samples for %d coefficients", n, k)
	}
	// Augmented [XᵀX | I] and Xᵀy.
	a := make([][]float64, k)
	for i := range a {
		a[i] = make([]float64, 2*k+1)
		a[i][k+i] = 1
	}
	for r := range n {
		for i := range k {
			for j := range k {
				a[i][j] += x[r][i] * x[r][j]
			}
			a[i][2*k] += x[r][i] * y[r]
		}
	}
	scale := make([]float64, k)
	for i := range k {
		scale[i] = math.Sqrt(a[i][i])
	}
	for c := range k {
		p := c
		for r := c + 1; r < k; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		if math.Abs(a[p][c]) <= 1e-9*max(scale[c]*scale[c], 1e-300) {
			return olsFit{}, fmt.Errorf("the design does not separate %s from the other terms", names[c])
		}
		a[c], a[p] = a[p], a[c]
		piv := a[c][c]
		for j := range a[c] {
			a[c][j] /= piv
		}
		for r := range k {
			if r == c || a[r][c] == 0 {
				continue
			}
			f := a[r][c]
			for j := range a[r] {
				a[r][j] -= f * a[c][j]
			}
		}
	}
	fit := olsFit{Beta: make([]float64, k), SE: make([]float64, k), N: n}
	for i := range k {
		fit.Beta[i] = a[i][2*k]
	}
	var rss float64
	for r := range n {
		pred := 0.0
		for i := range k {
			pred += x[r][i] * fit.Beta[i]
		}
		rss += (y[r] - pred) * (y[r] - pred)
	}
	sigma2 := rss / float64(n-k)
	for i := range k {
		fit.SE[i] = math.Sqrt(sigma2 * a[i][k+i])
	}
	fit.Residual = math.Sqrt(rss / float64(n))
	return fit, nil
}

// ci95 is the 95 % interval of coefficient i (normal approximation).
func (f olsFit) ci95(i int) (lo, hi float64) {
	return f.Beta[i] - z95*f.SE[i], f.Beta[i] + z95*f.SE[i]
}

// quantile is the p-quantile of sorted values, linearly interpolated.
func quantile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := p * float64(len(sorted)-1)
	i := int(pos)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(i)
	return sorted[i]*(1-f) + sorted[i+1]*f
}

// medianCI is the sample median and a distribution-free 95 % interval from order statistics (ranks
// n/2 ∓ 1.96·√n/2).
func medianCI(values []float64) (median, lo, hi float64) {
	s := slices.Clone(values)
	slices.Sort(s)
	n := len(s)
	half := z95 * math.Sqrt(float64(n)) / 2
	l := max(0, int(math.Floor(float64(n)/2-half)))
	h := min(n-1, int(math.Ceil(float64(n)/2+half)))
	return quantile(s, 0.5), s[l], s[h]
}

// meanCI is the mean and its 95 % interval (normal approximation).
func meanCI(values []float64) (mean, lo, hi float64) {
	n := float64(len(values))
	for _, v := range values {
		mean += v
	}
	mean /= n
	var ss float64
	for _, v := range values {
		ss += (v - mean) * (v - mean)
	}
	se := 0.0
	if n > 1 {
		se = math.Sqrt(ss / (n - 1) / n)
	}
	return mean, mean - z95*se, mean + z95*se
}

// distFit fits a shifted log-normal, Base + LogN(Median, Sigma), to samples in milliseconds by matching
// three quantiles (10 %, 50 %, 90 %): for that family (q90 − q50)/(q50 − q10) = exp(σ·z90), which gives σ,
// then the log-normal median m = (q50 − q10)/(1 − exp(−σ·z90)) and Base = q50 − m. A sample without right
// skew (ratio ≤ 1.02) gets a nearly symmetric log-normal (σ = 0.1) with the sample's 10–90 % spread, and a
// sample without spread a constant. The residual is the rms difference between the sample's and the fitted
// distribution's deciles.
func distFit(ms []float64) (d cvatsim.Dist, residual float64) {
	s := make([]float64, len(ms))
	for i, v := range ms {
		s[i] = max(v, 0) // a latency net of the emulator's overhead can come out slightly negative
	}
	slices.Sort(s)
	q10, q50, q90 := quantile(s, 0.1), quantile(s, 0.5), quantile(s, 0.9)
	const z90 = 1.2815516
	lower, upper := q50-q10, q90-q50
	switch {
	case q90 <= q10 || q50 <= 0:
		d = cvatsim.Dist{Base: msDur(q50)}
	case lower <= 0 || upper <= lower*1.02:
		const sigma = 0.1
		sd := (q90 - q10) / (2 * z90)
		m := sd / sigma
		base := q50 - m
		if base < 0 {
			d = cvatsim.Dist{Median: msDur(max(q50, 0)), Sigma: round3(sd / max(q50, 1e-9))}
		} else {
			d = cvatsim.Dist{Base: msDur(base), Median: msDur(m), Sigma: sigma}
		}
	default:
		sigma := math.Log(upper/lower) / z90
		m := lower / (1 - math.Exp(-sigma*z90))
		base := q50 - m
		if base < 0 { // a log-normal alone, refitted on the median and the upper spread
			base, m = 0, q50
			sigma = math.Log(q90/q50) / z90
		}
		d = cvatsim.Dist{Base: msDur(base), Median: msDur(m), Sigma: round3(sigma)}
	}
	var ss float64
	for i := 1; i <= 9; i++ {
		diff := quantile(s, float64(i)/10) - ms1(d.Quantile(float64(i)/10))
		ss += diff * diff
	}
	return d, math.Sqrt(ss / 9)
}

func msDur(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond)).Round(10 * time.Microsecond)
}
func ms1(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func round3(v float64) float64    { return math.Round(v*1000) / 1000 }
