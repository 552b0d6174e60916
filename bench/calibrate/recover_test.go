package calibrate_test

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvatbench/cvatbench/bench/calibrate"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
)

// The experiment runs against a full-scale emulator in a testing/synctest bubble: virtual time advances only
// when every goroutine waits on the emulator's timers, the in-memory network or each other, so every
// latency is exactly the model's and the test takes about a second of real time whatever the machine's load.
// What remains is the sampling noise of the distributions, with the emulator's fixed seed.

func TestCalibrateRecoversEveryTermOfTheEmulator(t *testing.T) {
	synctest.Test(t, recoverEveryTerm)
}

// recoverSeed seeds the emulator's latency model; the test passes for other seeds too (CALIBRATE_SEED).
var recoverSeed = int64(7)

func recoverEveryTerm(t *testing.T) {
	want := truth()
	pn := newPipeNet()
	srv, err := cvatsim.New(cvatsim.Options{Profile: want, Seed: recoverSeed, WebhookDial: pn.Dial})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := pn.Listen()
	hs := &http.Server{Handler: srv.Handler()} // unchecked: the schema check is the other tests' job here
	go func() { _ = hs.Serve(ln) }()
	defer srv.Close()
	defer hs.Close()
	hc := &http.Client{Transport: &http.Transport{DialContext: pn.Dial}}
	defer hc.CloseIdleConnections()
	url := "http://" + ln.Addr().String()
	key, err := cvat.Login(context.Background(), url, cvatsim.DefaultUsername, cvatsim.DefaultPassword, hc)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := cvat.New(cvat.Config{BaseURL: url, Auth: cvat.Token(key), HTTPClient: hc})
	basic, _ := cvat.New(cvat.Config{BaseURL: url, Auth: cvat.Basic(cvatsim.DefaultUsername, cvatsim.DefaultPassword), HTTPClient: hc})
	s, err := calibrate.Run(context.Background(), c, calibrate.Options{Design: calibrate.DefaultDesign(), Server: "embedded", Auth: "token",
		Basic: basic, Receiver: true, Net: calibrate.Network{Listen: pn.Listen, Dial: pn.Dial}})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := cvatsim.LookupProfile("cvat-default")
	pf, err := calibrate.Fit(s, base, "fitted")
	if err != nil {
		t.Fatal(err)
	}
	got := pf.Terms
	dists := map[string][2]cvatsim.Dist{
		"pickup": {got.PickUp, want.PickUp}, "processing": {got.Processing, want.Processing},
		"jobs_to_commit": {got.JobsToCommit, want.JobsToCommit}, "api_read": {got.APIRead, want.APIRead},
		"api_write": {got.APIWrite, want.APIWrite}, "api_upload": {got.APIUpload, want.APIUpload},
	}
	for name, d := range dists {
		// A distribution is judged by its median and its mean; its tail (σ) rests on a few samples.
		for _, m := range []struct {
			what string
			g, w time.Duration
		}{{"median", d[0].Quantile(0.5), d[1].Quantile(0.5)}, {"mean", d[0].Mean(), d[1].Mean()}} {
			if rel := math.Abs(float64(m.g-m.w)) / float64(m.w); rel > 0.15 {
				t.Errorf("%s %s: fitted %v, true %v (%.0f%% off)", name, m.what, m.g, m.w, 100*rel)
			}
		}
	}
	relative := map[string][2]time.Duration{
		"commit_to_finished": {got.CommitToFinished, want.CommitToFinished},
		"webhook_hop":        {got.WebhookHop, want.WebhookHop},
		"basic_auth":         {got.BasicAuth, want.BasicAuth},
	}
	for name, v := range relative {
		if rel := math.Abs(float64(v[0]-v[1])) / float64(v[1]); rel > 0.15 {
			t.Errorf("%s: fitted %v, true %v (%.0f%% off)", name, v[0], v[1], 100*rel)
		}
	}
	absolute := map[string][2]time.Duration{ // per-image, per-job and per-frame terms: within 1 ms
		"per_image": {got.PerImage, want.PerImage}, "per_job": {got.PerJob, want.PerJob},
		"api_read_per_job": {got.APIReadPerJob, want.APIReadPerJob}, "delete_per_job": {got.DeletePerJob, want.DeletePerJob},
		"upload_per_file": {got.UploadPerFile, want.UploadPerFile}, "commit_per_object": {got.CommitPerObject, want.CommitPerObject},
	}
	for q, w := range want.PreviewPerFrame {
		absolute["preview_per_frame["+string(rune('0'+q/100))+string(rune('0'+q/10%10))+string(rune('0'+q%10))+"]"] = [2]time.Duration{got.PreviewPerFrame[q], w}
	}
	for name, v := range absolute {
		if d := v[0] - v[1]; d > time.Millisecond || d < -time.Millisecond {
			t.Errorf("%s: fitted %v, true %v", name, v[0], v[1])
		}
	}
	if got.ImportWorkers != want.ImportWorkers {
		t.Errorf("import_workers: fitted %d, true %d", got.ImportWorkers, want.ImportWorkers)
	}
	if d := got.ConcurrencyStretch - want.ConcurrencyStretch; math.Abs(d) > 0.15*want.ConcurrencyStretch {
		t.Errorf("concurrency_stretch: fitted %.3f, true %.3f", got.ConcurrencyStretch, want.ConcurrencyStretch)
	}
	var buf bytes.Buffer
	if err := cvatsim.WriteProfile(&buf, pf); err != nil {
		t.Fatal(err)
	}
	if _, err := cvatsim.ParseProfile(&buf); err != nil {
		t.Fatalf("the calibrated file does not parse: %v", err)
	}
	t.Logf("%d creations, %d endpoint samples in %v", len(s.Creations), len(s.Endpoints), s.FinishedAt.Sub(s.StartedAt))
	for _, f := range pf.Fit {
		t.Logf("%-28s %10.3f [%8.3f, %8.3f] n=%d resid=%.3f measured=%v", f.Term, f.Estimate, f.Low, f.High, f.N, f.Residual, f.Measured)
	}
}
