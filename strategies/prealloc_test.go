package strategies_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/cvatbench/cvatbench/strategies"
)

func TestPrealloc(t *testing.T) {
	p := strategies.DefaultParams()
	p.BackoffJitter = 0
	jobsAll := "jobs(page=0,size=-1,sort=id)@0s"
	t.Run("IDs at the first listing, then the request until finished", func(t *testing.T) {
		clk := newAutoClock()
		f := newFakeAPI(t, clk)
		f.visibleAt, f.finishedAt = 0, 600*ms // the what-if: rows listed from the 202 on
		out, err := mustNew(t, "prealloc", p).Wait(t.Context(), f, clk, trial(f))
		if err != nil {
			t.Fatal(err)
		}
		if out.Signal != strategies.SignalPreallocated || !out.SeenAt.Equal(t0) || !slices.Equal(out.JobIDs, []int{101, 102}) {
			t.Errorf("outcome %+v, want the IDs seen at the start", out)
		}
		want := []string{jobsAll, "rq@0s", "rq@100ms", "rq@300ms", "rq@700ms"}
		if got := f.log(); !slices.Equal(got, want) {
			t.Errorf("calls %v, want %v", got, want)
		}
		if out.Request == nil || out.Request.Status != "finished" {
			t.Errorf("returned before the commit: %+v", out.Request)
		}
	})
	t.Run("a CVAT release lists nothing at the 202", func(t *testing.T) {
		clk := newAutoClock()
		f := newFakeAPI(t, clk)
		f.visibleAt, f.finishedAt = 600*ms, 600*ms
		_, err := mustNew(t, "prealloc", p).Wait(t.Context(), f, clk, trial(f))
		if !errors.Is(err, strategies.ErrNotPreallocated) || len(f.log()) != 1 {
			t.Errorf("err %v after %v", err, f.log())
		}
	})
	t.Run("a failed creation is an error", func(t *testing.T) {
		clk := newAutoClock()
		f := newFakeAPI(t, clk)
		f.visibleAt, f.statuses = 0, []string{"queued", "failed"} // the rows were listed, then rolled back
		_, err := mustNew(t, "prealloc", p).Wait(t.Context(), f, clk, trial(f))
		if strategies.Classify(err) != strategies.ClassRequestFailed {
			t.Errorf("err %v", err)
		}
	})
}
