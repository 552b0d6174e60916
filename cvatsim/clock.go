package cvatsim

import (
	"context"
	"time"
)

// Clock is where the emulator reads the time and waits. Production uses the
// real clock; tests pass a fake so that injected latencies, request expiry and
// webhook retries happen without sleeping.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed; stop cancels
	// the call and reports whether it did so before f ran.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// realClock is the wall clock.
type realClock struct{}

// Now returns time.Now.
func (realClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

var _ Clock = realClock{}

// sleep waits d on clk or until ctx ends. A zero or negative d returns at once
// without touching the clock, which is what keeps the instant profile instant.
func sleep(ctx context.Context, clk Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	done := make(chan struct{})
	stop := clk.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		stop()
		return ctx.Err()
	}
}

// now is the server's database time: UTC with microseconds, as PostgreSQL
// stores it, so that the timeline equals the dates the API shows.
func (s *Server) now() time.Time { return s.clk.Now().UTC().Truncate(time.Microsecond) }
