package bench_test

import (
	"context"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/internal/realserver"
	"github.com/cvatbench/cvatbench/internal/schemacheck"
)

// skewedClock is the wall clock shifted by offset: a server whose clock is off.
type skewedClock struct{ offset time.Duration }

func (c skewedClock) Now() time.Time { return time.Now().Add(c.offset) }
func (skewedClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestPingOffsetFindsTheServersSkew(t *testing.T) {
	for _, skew := range []time.Duration{0, 250 * time.Millisecond, -3 * time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			prof, _ := cvatsim.LookupProfile("instant")
			srv, err := cvatsim.New(cvatsim.Options{Profile: prof, Clock: skewedClock{skew}})
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(schemacheck.Load(t).Middleware(t, srv.Handler()))
			t.Cleanup(func() { hs.Close(); srv.Close() })
			c := loginClient(t, hs.URL, cvatsim.DefaultUsername, cvatsim.DefaultPassword)
			ctx := context.Background()
			p, err := c.CreateProject(ctx, cvat.ProjectSpec{Name: "cvatbench-clock", Labels: []cvat.Label{{Name: "x"}}})
			if err != nil {
				t.Fatal(err)
			}
			est, err := bench.PingOffset(ctx, c, p.ID, listen(t), "", "cvatbench-clock", 10, nil)
			if err != nil {
				t.Fatal(err)
			}
			if est.Samples != 10 || est.Method != bench.OffsetByPing {
				t.Errorf("estimate %+v: want 10 ping samples", est)
			}
			if d := est.Offset - skew; d > est.Bound || -d > est.Bound {
				t.Errorf("offset %v ± %v does not contain the true skew %v", est.Offset, est.Bound, skew)
			}
			if est.Bound > 5*time.Millisecond {
				t.Errorf("bound %v: want under 5 ms on one host", est.Bound)
			}
			hooks, err := c.ListWebhooks(ctx)
			if err != nil || len(hooks) != 0 {
				t.Errorf("webhooks left: %v %v", hooks, err)
			}
		})
	}
}

func TestPingOffsetFailsWhenNothingIsDelivered(t *testing.T) {
	_, base := newSim(t)
	c := loginClient(t, base, cvatsim.DefaultUsername, cvatsim.DefaultPassword)
	ctx := context.Background()
	p, err := c.CreateProject(ctx, cvat.ProjectSpec{Name: "cvatbench-clock", Labels: []cvat.Label{{Name: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	// The server posts to a port nobody listens on: every ping fails (status 502 in the emulator).
	_, err = bench.PingOffset(ctx, c, p.ID, listen(t), "http://127.0.0.1:1/", "cvatbench-clock", 3, nil)
	if err == nil {
		t.Fatal("no error for undeliverable pings")
	}
	if hooks, _ := c.ListWebhooks(ctx); len(hooks) != 0 {
		t.Errorf("webhook left after failure: %v", hooks)
	}
}

func TestRealServerPingOffset(t *testing.T) {
	srv := realserver.Get(t)
	c := srv.Client(t)
	ctx := context.Background()
	p, err := c.CreateProject(ctx, cvat.ProjectSpec{Name: bench.NamePrefix + bench.NewRunID(time.Now()) + "-clock", Labels: []cvat.Label{{Name: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteProject(context.Background(), p.ID) })
	est, err := bench.PingOffset(ctx, c, p.ID, listen(t), "", "cvatbench-clock-test", 20, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("offset %v ± %v over %d pings (consistent %v)", est.Offset, est.Bound, est.Samples, est.Consistent)
	if est.Bound >= 5*time.Millisecond {
		t.Errorf("bound %v: want under 5 ms", est.Bound)
	}
	if srv.SameHost() && (est.Offset > est.Bound || -est.Offset > est.Bound) {
		t.Errorf("same host: offset %v ± %v excludes 0", est.Offset, est.Bound)
	}
}
