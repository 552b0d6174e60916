package bench

import "time"

func floatPtr(v float64) *float64 { return &v }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
