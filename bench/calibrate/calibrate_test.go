package calibrate_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench/calibrate"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/internal/schemacheck"
)

// truth changes every term the experiment measures from its cvat-default value.
func truth() cvatsim.Profile {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	p, _ := cvatsim.LookupProfile("cvat-default")
	p.Name = "truth"
	p.ImportWorkers = 3
	p.APISlots = 0
	p.APIRead = cvatsim.Dist{Base: ms(12), Median: ms(8), Sigma: 0.4}
	p.APIReadPerJob = ms(0.5)
	p.APIWrite = cvatsim.Dist{Base: ms(40), Median: ms(30), Sigma: 0.35}
	p.APIUpload = cvatsim.Dist{Base: ms(15), Median: ms(12), Sigma: 0.3}
	p.DeletePerJob = ms(2)
	// upload_bytes_per_second stays: the experiment cannot separate it from upload_per_file (one image size).
	p.UploadPerFile = ms(1.5)
	p.BasicAuth = ms(250)
	p.PickUp = cvatsim.Dist{Base: ms(15), Median: ms(12), Sigma: 0.5}
	p.Processing = cvatsim.Dist{Base: ms(30), Median: ms(45), Sigma: 0.3}
	p.PerImage = ms(1.2)
	p.PerJob = ms(7)
	p.JobsToCommit = cvatsim.Dist{Base: ms(80), Median: ms(40), Sigma: 0.35}
	p.PreviewPerFrame = cvatsim.QualityCost{10: ms(2.5), 70: ms(4.5), 100: ms(12)}
	p.ConcurrencyStretch = 0.7
	p.CommitToFinished = ms(25)
	p.CommitPerObject = ms(2)
	p.WebhookHop = ms(70)
	return p
}

func emulator(t *testing.T, prof cvatsim.Profile, checked bool) (*cvatsim.Server, *cvat.Client) {
	t.Helper()
	srv, err := cvatsim.New(cvatsim.Options{Profile: prof, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	if checked {
		h = schemacheck.Load(t).Middleware(t, h) // every request and response checked against CVAT's schema
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	key, err := cvat.Login(context.Background(), hs.URL, cvatsim.DefaultUsername, cvatsim.DefaultPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := cvat.New(cvat.Config{BaseURL: hs.URL, Auth: cvat.Token(key)})
	return srv, c
}

// setFaults injects the faults of spec ("" for none) from now on.
func setFaults(srv *cvatsim.Server, spec string) error {
	f, err := cvatsim.ParseFaults(spec)
	if err != nil {
		return err
	}
	return srv.SetFaults(f)
}

func smallDesign() calibrate.Design {
	d := calibrate.DefaultDesign()
	d.Repeats = 6
	d.VisibilityTrials = 6
	d.ConcurrentRounds = 5
	d.EndpointSamples = 12
	d.Timeout = 10 * time.Second
	d.StatusPollPeriod = 2 * time.Millisecond
	d.VisibilityPollGap = time.Millisecond
	return d
}

func TestCalibrateNamesTheTermItCannotFit(t *testing.T) {
	never := truth()
	never.PickUp = cvatsim.Dist{Base: time.Hour}
	tests := []struct {
		name   string
		prof   cvatsim.Profile
		faults string
		term   string
		why    string
	}{
		{"tasks fail", truth(), "procfail=1", "processing", "failed task"},
		{"never started", never, "", "pickup", "not started"},
		{"server errors", truth(), "http5xx=1", "anything", "server about"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := emulator(t, tc.prof, tc.faults == "") // injected proxy 5xx are not CVAT's answers
			// The user's own task, created before the run, must come through untouched.
			own, err := c.CreateTask(context.Background(), cvat.TaskSpec{Name: "users-own", Labels: []cvat.Label{{Name: "car"}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := setFaults(srv, tc.faults); err != nil {
				t.Fatal(err)
			}
			d := smallDesign()
			d.Timeout = 300 * time.Millisecond
			_, err = calibrate.Run(context.Background(), c, calibrate.Options{Design: d, Server: "embedded"})
			var ce *calibrate.Error
			if err == nil {
				t.Fatal("no error")
			}
			if tc.term != "" && (!errors.As(err, &ce) || ce.Term != tc.term || !strings.Contains(err.Error(), tc.why)) {
				t.Fatalf("error %q: want term %s and %q", err, tc.term, tc.why)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if err := setFaults(srv, ""); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			tasks, terr := c.ListTasks(ctx, "")
			projects, perr := c.ListProjects(ctx, "")
			hooks, herr := c.ListWebhooks(ctx)
			if terr != nil || perr != nil || herr != nil || len(tasks) != 1 || tasks[0].ID != own.ID || len(projects)+len(hooks) != 0 {
				t.Errorf("after the run: tasks %v (want only %d), %d projects, %d webhooks (%v %v %v)", tasks, own.ID, len(projects), len(hooks), terr, perr, herr)
			}
		})
	}
}
