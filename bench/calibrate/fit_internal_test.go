package calibrate

import (
	"math"
	"testing"
	"time"
)

// TestDistFitIsAlwaysADistribution: samples at or below zero (latencies net of the emulator's overhead),
// constant, symmetric or skewed, give a finite, non-negative distribution whose median is the sample's.
func TestDistFitIsAlwaysADistribution(t *testing.T) {
	tests := map[string][]float64{
		"all negative":  {-0.3, -0.2, -0.1, -0.05},
		"around zero":   {-0.2, 0, 0.1, 0.3, 0.05},
		"constant":      {5, 5, 5, 5},
		"symmetric":     {9, 10, 11, 9.5, 10.5, 10, 10},
		"right skewed":  {10, 11, 12, 13, 15, 20, 30, 60},
		"left skewed":   {1, 50, 55, 57, 58, 59, 60},
		"one sample":    {7},
		"huge and tiny": {1e-6, 1e6},
	}
	for name, samples := range tests {
		d, resid := distFit(samples)
		for _, v := range []float64{float64(d.Base), float64(d.Median), d.Sigma, resid} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Errorf("%s: %+v resid %v is not a distribution", name, d, resid)
			}
		}
		if name == "right skewed" || name == "symmetric" || name == "constant" {
			s := append([]float64(nil), samples...)
			want := median(s)
			if got := float64(d.Quantile(0.5)) / float64(time.Millisecond); math.Abs(got-want) > 0.05*want {
				t.Errorf("%s: fitted median %.3f ms, sample median %.3f ms", name, got, want)
			}
		}
	}
}

func median(v []float64) float64 {
	m, _, _ := medianCI(v)
	return m
}

// TestOLSRecoversAKnownLine: y = 3 + 2x exactly gives the coefficients with zero error; a constant column
// is reported as not separable.
func TestOLSRecoversAKnownLine(t *testing.T) {
	var x [][]float64
	var y []float64
	for i := range 10 {
		x = append(x, []float64{1, float64(i)})
		y = append(y, 3+2*float64(i))
	}
	fit, err := ols(x, y, []string{"a", "b"})
	if err != nil || math.Abs(fit.Beta[0]-3) > 1e-9 || math.Abs(fit.Beta[1]-2) > 1e-9 || fit.Residual > 1e-9 {
		t.Fatalf("fit %+v, %v", fit, err)
	}
	for i := range x {
		x[i][1] = 4
	}
	if _, err := ols(x, y, []string{"a", "b"}); err == nil {
		t.Fatal("a constant column was separated from the intercept")
	}
}
