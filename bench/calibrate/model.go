package calibrate

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cvatbench/cvatbench/cvatsim"
)

// The emulator's processing model (cvatsim/pipeline.go) that the fit inverts, with S the request's
// started_date, J₁…Jⱼ the job rows' created_date and F its finished_date, for n images, j jobs and a task
// preview of f frames at quality q:
//
//	J₁ − S      = processing + per_image·n + per_job
//	Jᵢ − Jᵢ₋₁   = per_job
//	F − Jⱼ      = preview(q)·f + jobs_to_commit + commit_to_finished + commit_per_object·(j+2)
//	F − visible = commit_to_finished + commit_per_object·(j+2)
//
// and pick-up = S − the request's created_date. Every equation uses server dates only, except the last,
// which needs the clock offset (the visibility trials poll the jobs listing on the local clock).

// Fit turns samples into a profile file. Terms the experiment cannot measure keep base's value and are
// marked measured: false. An error names the term that could not be fitted.
func Fit(s *Samples, base cvatsim.Profile, name string) (cvatsim.ProfileFile, error) {
	f := &fitter{s: s, p: base, fits: map[string]cvatsim.TermFit{}}
	f.p.Name = name
	steps := []func() error{f.pickup, f.processing, f.lead, f.commitToFinished, f.workers, f.reads, f.writes, f.webhookHop}
	for _, step := range steps {
		if err := step(); err != nil {
			return cvatsim.ProfileFile{}, err
		}
	}
	for _, tf := range f.fits {
		for _, v := range []float64{tf.Estimate, tf.Low, tf.High, tf.Residual} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return cvatsim.ProfileFile{}, &Error{tf.Term, fmt.Errorf("the fit is not a number (%d samples)", tf.N)}
			}
		}
	}
	var fits []cvatsim.TermFit
	for _, key := range cvatsim.TermKeys() {
		if tf, ok := f.fits[key]; ok {
			fits = append(fits, tf)
			continue
		}
		if key == "preview_per_frame" {
			for _, q := range sortedQualities(f.p.PreviewPerFrame) {
				fits = append(fits, f.fits[fmt.Sprintf("preview_per_frame[%d]", q)])
			}
			continue
		}
		fits = append(fits, cvatsim.TermFit{Term: key, Method: "not measurable by this experiment: kept from " + base.Name})
	}
	pf := cvatsim.ProfileFile{
		Schema: cvatsim.ProfileSchema, Name: name, Terms: f.p, Fit: fits,
		Description: fmt.Sprintf("calibrated by cvatbench calibrate against %s (CVAT %s)", s.Server, s.Version),
		Server:      &cvatsim.ServerInfo{URL: s.Server, Version: s.Version, MeasuredAt: s.StartedAt, Auth: s.Auth},
		Notes:       f.notes,
	}
	if s.ClockNote != "" {
		pf.Notes = append(pf.Notes, s.ClockNote)
	}
	if err := pf.Terms.Validate(); err != nil {
		return cvatsim.ProfileFile{}, &Error{"background_service", err}
	}
	return pf, nil
}

type fitter struct {
	s       *Samples
	p       cvatsim.Profile
	fits    map[string]cvatsim.TermFit
	notes   []string
	leadFit olsFit // F − Jⱼ on objects and preview frames
	leadQs  []int  // the qualities of leadFit's preview columns
}

func (f *fitter) creations(phases ...string) []Creation {
	var out []Creation
	for _, c := range f.s.Creations {
		if slices.Contains(phases, c.Phase) && len(c.JobCreated) > 0 && !c.Started.IsZero() {
			out = append(out, c)
		}
	}
	return out
}

// dist records a distribution term fitted to samples (ms).
func (f *fitter) dist(key string, samples []float64, method string, set func(cvatsim.Dist)) error {
	if len(samples) < 3 {
		return &Error{key, fmt.Errorf("%d samples, need at least 3", len(samples))}
	}
	d, resid := distFit(samples)
	set(d)
	med, lo, hi := medianCI(samples)
	f.fits[key] = cvatsim.TermFit{Term: key, Unit: "ms (median)", Estimate: round3(med), Low: round3(lo), High: round3(hi),
		N: len(samples), Residual: round3(resid), Method: method + "; shifted log-normal by the 10/50/90 % quantiles", Measured: true}
	return nil
}

func (f *fitter) scalar(key, unit string, est, lo, hi float64, n int, resid float64, method string) {
	f.fits[key] = cvatsim.TermFit{Term: key, Unit: unit, Estimate: round3(est), Low: round3(lo), High: round3(hi), N: n,
		Residual: round3(resid), Method: method, Measured: true}
}

func (f *fitter) pickup() error {
	var q []float64
	for _, c := range f.creations(PhaseSequential) {
		q = append(q, ms(c.Started.Sub(c.RequestCreated)))
	}
	return f.dist("pickup", q, "started_date − created_date, sequential phase (a free worker)", func(d cvatsim.Dist) { f.p.PickUp = d })
}

// processing fits J₁ − S on images, and the spacing of job rows.
func (f *fitter) processing() error {
	seq := f.creations(PhaseSequential)
	var gaps []float64
	for _, c := range seq {
		for i := 1; i < len(c.JobCreated); i++ {
			gaps = append(gaps, ms(c.JobCreated[i].Sub(c.JobCreated[i-1])))
		}
	}
	if len(gaps) < 3 {
		return &Error{"per_job", fmt.Errorf("%d gaps between job rows: the design needs points with several jobs", len(gaps))}
	}
	perJob, pjLo, pjHi := meanCI(gaps)
	_, gapResid := distFit(gaps)
	f.p.PerJob = msDur(max(perJob, 0))
	f.scalar("per_job", "ms", perJob, pjLo, pjHi, len(gaps), gapResid, "mean gap between consecutive job rows' created_date")

	x := make([][]float64, len(seq))
	y := make([]float64, len(seq))
	for i, c := range seq {
		x[i] = []float64{1, float64(c.Images)}
		y[i] = ms(c.JobCreated[0].Sub(c.Started)) - perJob
	}
	fit, err := ols(x, y, []string{"processing", "per_image"})
	if err != nil {
		return &Error{"per_image", err}
	}
	lo, hi := fit.ci95(1)
	f.p.PerImage = msDur(max(fit.Beta[1], 0))
	f.scalar("per_image", "ms", fit.Beta[1], lo, hi, fit.N, fit.Residual, "least squares of first job row − started − per_job on images")
	fixed := make([]float64, len(seq))
	for i, c := range seq {
		fixed[i] = y[i] - fit.Beta[1]*float64(c.Images)
	}
	return f.dist("processing", fixed, "first job row − started − per_image·images − per_job", func(d cvatsim.Dist) { f.p.Processing = d })
}

// lead fits F − Jⱼ on the preview frames by quality and the objects the commit writes.
func (f *fitter) lead() error {
	seq := f.creations(PhaseSequential)
	qualities := map[int]bool{}
	for _, c := range seq {
		qualities[c.Quality] = true
	}
	qs := make([]int, 0, len(qualities))
	for q := range qualities {
		qs = append(qs, q)
	}
	sort.Ints(qs)
	names := []string{"jobs_to_commit", "commit_per_object"}
	for _, q := range qs {
		names = append(names, fmt.Sprintf("preview_per_frame[%d]", q))
	}
	x := make([][]float64, len(seq))
	y := make([]float64, len(seq))
	for i, c := range seq {
		row := []float64{1, float64(c.Jobs() + 2)}
		for _, q := range qs {
			v := 0.0
			if c.Quality == q {
				v = float64(c.PreviewFrames) * c.PixelsPerVGA
			}
			row = append(row, v)
		}
		x[i], y[i] = row, ms(c.Finished.Sub(c.JobCreated[len(c.JobCreated)-1]))
	}
	fit, err := ols(x, y, names)
	if err != nil {
		return &Error{"preview_per_frame", err}
	}
	f.p.PreviewPerFrame = cvatsim.QualityCost{}
	for i, q := range qs {
		b := fit.Beta[2+i]
		lo, hi := fit.ci95(2 + i)
		f.p.PreviewPerFrame[q] = msDur(max(b, 0))
		f.scalar(names[2+i], "ms per 640×480 frame", b, lo, hi, fit.N, fit.Residual, "least squares of finished − last job row on preview frames by quality and objects")
	}
	lo, hi := fit.ci95(1)
	f.p.CommitPerObject = msDur(max(fit.Beta[1], 0))
	f.scalar("commit_per_object", "ms", fit.Beta[1], lo, hi, fit.N, fit.Residual, "same fit: slope on jobs + 2")
	f.leadFit, f.leadQs = fit, qs
	return nil
}

// commitToFinished reads F − visible from the visibility trials, then splits the lead's remainder into
// jobs_to_commit.
func (f *fitter) commitToFinished() error {
	offset, bound := time.Duration(0), time.Duration(0)
	if f.s.Clock != nil {
		offset, bound = f.s.Clock.Offset, f.s.Clock.Bound
	}
	var after []float64
	var width []float64
	for _, c := range f.creations(PhaseVisibility) {
		if c.VisibleAfter == nil || c.VisibleBefore == nil {
			continue
		}
		mid := c.VisibleAfter.Add(c.VisibleBefore.Sub(*c.VisibleAfter) / 2).Add(offset) // server clock; see Creation.VisibleAfter
		after = append(after, ms(c.Finished.Sub(mid))-ms(f.p.CommitPerObject)*float64(c.Jobs()+2))
		width = append(width, ms(c.VisibleBefore.Sub(*c.VisibleAfter)))
	}
	ctf := 0.0
	if len(after) >= 3 {
		// Each bracket errs uniformly by up to half its width, symmetric about 0: the mean is the estimate.
		mean, lo, hi := meanCI(after)
		ctf = max(mean, 0)
		if mean < 0 {
			f.notes = append(f.notes, fmt.Sprintf("commit_to_finished: measured %.1f ms, kept at 0: the server's listings saw the jobs only after finished_date, "+
				"because they read the database before their latency ends while the emulator reads at the end; listings in the emulator see a commit up to that much earlier", mean))
		}
		f.p.CommitToFinished = msDur(ctf)
		w, _, _ := medianCI(width)
		f.scalar("commit_to_finished", "ms", mean, lo-ms(bound), hi+ms(bound), len(after), w/2,
			"mean of finished − midpoint of the jobs-listing bracket of the commit, minus commit_per_object·objects (residual: half the median bracket)")
	} else {
		f.notes = append(f.notes, fmt.Sprintf("commit_to_finished: %d visibility brackets, kept from the base profile", len(after)))
		ctf = ms(f.p.CommitToFinished)
	}
	var rest []float64
	for _, c := range f.creations(PhaseSequential) {
		v := ms(c.Finished.Sub(c.JobCreated[len(c.JobCreated)-1])) - ctf - ms(f.p.CommitPerObject)*float64(c.Jobs()+2)
		for qi, q := range f.leadQs {
			if c.Quality == q {
				v -= f.leadFit.Beta[2+qi] * float64(c.PreviewFrames) * c.PixelsPerVGA
			}
		}
		rest = append(rest, v)
	}
	return f.dist("jobs_to_commit", rest, "finished − last job row − preview − commit_to_finished − commit_per_object·objects", func(d cvatsim.Dist) { f.p.JobsToCommit = d })
}

// workers reads the concurrent phase: the most creations processing at once, and the stretch of their
// processing against the sequential one-image creations.
func (f *fitter) workers() error {
	conc := f.creations(PhaseConcurrent)
	if len(conc) == 0 {
		return &Error{"import_workers", fmt.Errorf("no concurrent creations")}
	}
	loads := loadsAtStart(conc)
	maxOverlap := slices.Max(loads)
	inFlight := conc[0].InFlight
	f.p.ImportWorkers = maxOverlap
	method := "most creations processing at once (started → finished overlap)"
	hi := float64(maxOverlap)
	if maxOverlap >= inFlight {
		method += fmt.Sprintf("; all %d in flight processed at once: a lower bound, rerun with more", inFlight)
		f.notes = append(f.notes, fmt.Sprintf("import_workers: at least %d (every creation in flight processed at once)", maxOverlap))
	}
	f.scalar("import_workers", "count", float64(maxOverlap), float64(maxOverlap), hi, len(conc), 0, method)

	// The emulator stretches each processing phase by the creations processing when it starts; the part
	// after the commit is not stretched. So E[P] = U + W·(1 + s·(k−1)), with k the creations processing at
	// this one's started_date (itself included), U = commit_to_finished + commit_per_object·objects and W the
	// mean of the stretched phases, predicted for a one-image creation from the terms the sequential phase
	// fitted (more precise than the few one-image creations alone).
	c0 := conc[0]
	unstretched := ms(f.p.CommitToFinished) + 3*ms(f.p.CommitPerObject)
	w := ms(f.p.Processing.Mean()) + ms(f.p.PerImage) + ms(f.p.PerJob) + ms(f.p.JobsToCommit.Mean()) +
		ms(f.p.PreviewPerFrame.Cost(c0.Quality))*float64(c0.PreviewFrames)*c0.PixelsPerVGA
	ref := w + unstretched
	if w <= 0 {
		return &Error{"concurrency_stretch", fmt.Errorf("the sequential phase predicts no processing time for one image")}
	}
	var sxy, sxx float64
	var xs, ys []float64
	for i, c := range conc {
		x, y := float64(loads[i]-1), (ms(c.Finished.Sub(c.Started))-ref)/w
		sxy += x * y
		sxx += x * x
		xs, ys = append(xs, x), append(ys, y)
	}
	if sxx == 0 {
		return &Error{"concurrency_stretch", fmt.Errorf("no concurrent creation started while another was processing")}
	}
	s := sxy / sxx
	var rss float64
	for i := range xs {
		rss += (ys[i] - s*xs[i]) * (ys[i] - s*xs[i])
	}
	se := math.Sqrt(rss / float64(max(len(xs)-1, 1)) / sxx)
	f.p.ConcurrencyStretch = round3(max(s, 0))
	f.scalar("concurrency_stretch", "per extra creation", s, s-z95*se, s+z95*se, len(xs), math.Sqrt(rss/float64(len(xs))),
		"least squares through 0 of the stretched part's slowdown against the sequential median on the creations processing at its start")
	return nil
}

// loadsAtStart is, for each creation, the number of creations (itself included) processing at its
// started_date: those started by then and not finished by then. Two sorted lists and binary search keep it
// O(n log n), so the fit stays linear in the samples up to a logarithm.
func loadsAtStart(all []Creation) []int {
	starts := make([]int64, len(all))
	ends := make([]int64, len(all))
	for i, c := range all {
		starts[i], ends[i] = c.Started.UnixNano(), c.Finished.UnixNano()
	}
	slices.Sort(starts)
	slices.Sort(ends)
	out := make([]int, len(all))
	for i, c := range all {
		s := c.Started.UnixNano()
		begun, _ := slices.BinarySearch(starts, s+1) // started at or before s
		done, _ := slices.BinarySearch(ends, s+1)    // finished at or before s
		out[i] = begun - done
	}
	return out
}

// overhead is the median latency of an endpoint (and job count) against the overhead probe, less the
// probe's own latency.
func (f *fitter) overhead(endpoint string, jobs int) float64 {
	var v []float64
	for _, e := range f.s.Overhead {
		if e.Endpoint == endpoint && e.Jobs == jobs {
			v = append(v, e.Ms)
		}
	}
	if len(v) == 0 {
		return 0
	}
	m, _, _ := medianCI(v)
	return m - ms(OverheadProbe)
}

// reads fits the GET latency and its cost per listed job, and Basic auth. Latencies are net of the
// emulator's own overhead on the same call (Samples.Overhead).
func (f *fitter) reads() error {
	var jobs1, jobs10, all, basic, token []float64
	for _, e := range f.s.Endpoints {
		e.Ms -= f.overhead(strings.TrimPrefix(e.Endpoint, "basic:"), e.Jobs)
		switch {
		case e.Endpoint == "basic:GET /api/users/self":
			basic = append(basic, e.Ms)
		case e.Endpoint == "GET /api/users/self":
			token = append(token, e.Ms)
		case e.Endpoint == "GET /api/jobs" && e.Jobs == 10:
			jobs10 = append(jobs10, e.Ms)
		case e.Endpoint == "GET /api/jobs":
			jobs1 = append(jobs1, e.Ms)
		default:
			all = append(all, e.Ms)
		}
	}
	if len(jobs1) < 3 || len(jobs10) < 3 {
		return &Error{"api_read_per_job", fmt.Errorf("%d and %d listing samples", len(jobs1), len(jobs10))}
	}
	m1, lo1, hi1 := medianCI(jobs1)
	m10, lo10, hi10 := medianCI(jobs10)
	perJob := (m10 - m1) / 9
	f.p.APIReadPerJob = msDur(max(perJob, 0))
	f.scalar("api_read_per_job", "ms", perJob, (lo10-hi1)/9, (hi10-lo1)/9, len(jobs1)+len(jobs10), 0, "(median listing of 10 jobs − of 1 job) / 9")
	for _, v := range jobs1 { // a one-job listing is a read plus one job's cost
		all = append(all, v-max(perJob, 0))
	}
	if err := f.dist("api_read", all, "client-side latency of GET request status, jobs (1 job) and task, minus the emulator's own latency on the same call", func(d cvatsim.Dist) {
		d.Cap = f.p.APIRead.Cap
		f.p.APIRead = d
	}); err != nil {
		return err
	}
	if len(basic) >= 3 && len(token) >= 3 {
		mb, lob, hib := medianCI(basic)
		mt, lot, hit := medianCI(token)
		f.p.BasicAuth = msDur(max(mb-mt, 0))
		f.scalar("basic_auth", "ms", mb-mt, lob-hit, hib-lot, len(basic)+len(token), 0, "median GET /api/users/self with Basic − with a token")
	}
	return nil
}

// writes fits POST /api/tasks, the upload's requests and cost per file, and the delete cost per job.
func (f *fitter) writes() error {
	// One creation at a time only: in the concurrent phase the uploads queue for the API processes.
	all := f.creations(PhaseSequential, PhaseVisibility, PhaseEndpoints)
	createOverhead := f.overhead("POST /api/tasks", 0)
	var creates, steps []float64
	var ux, dx [][]float64
	var uy, dy []float64
	for _, c := range all {
		creates = append(creates, c.CreateMs-createOverhead)
		if c.Phase == PhaseSequential {
			if c.UploadFilesMs > 0 {
				ux, uy = append(ux, []float64{1, float64(c.Images)}), append(uy, c.UploadFilesMs)
			}
			if c.DeleteMs > 0 {
				dx, dy = append(dx, []float64{1, float64(c.Jobs())}), append(dy, c.DeleteMs)
			}
		}
	}
	if err := f.dist("api_write", creates, "client-side latency of POST /api/tasks, minus the emulator's own", func(d cvatsim.Dist) { f.p.APIWrite = d }); err != nil {
		return err
	}
	up, err := ols(ux, uy, []string{"upload base", "upload_per_file"})
	if err != nil {
		return &Error{"upload_per_file", err}
	}
	var bytesPerFile float64
	var files int
	for _, c := range all {
		bytesPerFile += float64(c.UploadBytes)
		files += c.Images
	}
	bytesPerFile /= float64(max(files, 1))
	transfer := 0.0
	if f.p.UploadBytesPerSecond > 0 {
		transfer = bytesPerFile / f.p.UploadBytesPerSecond * 1000
	}
	lo, hi := up.ci95(1)
	f.p.UploadPerFile = msDur(max(up.Beta[1]-transfer, 0))
	f.scalar("upload_per_file", "ms", up.Beta[1]-transfer, lo-transfer, hi-transfer, up.N, up.Residual,
		fmt.Sprintf("least squares of Upload-Multiple on files, minus %.3f ms transfer per file at upload_bytes_per_second", transfer))
	// The emulator charges api_upload to each of the three requests, and the files to Upload-Multiple.
	for _, c := range all {
		if c.UploadStartMs > 0 && c.UploadFilesMs > 0 && c.UploadFinishMs > 0 {
			steps = append(steps, c.UploadStartMs-createOverhead, c.UploadFinishMs-createOverhead,
				c.UploadFilesMs-createOverhead-up.Beta[1]*float64(c.Images))
		}
	}
	if err := f.dist("api_upload", steps, "client-side latency of Upload-Start, Upload-Multiple net of its files, and Upload-Finish, minus the emulator's own",
		func(d cvatsim.Dist) { f.p.APIUpload = d }); err != nil {
		return err
	}
	del, err := ols(dx, dy, []string{"delete base", "delete_per_job"})
	if err != nil {
		return &Error{"delete_per_job", err}
	}
	lo, hi = del.ci95(1)
	f.p.DeletePerJob = msDur(max(del.Beta[1], 0))
	f.scalar("delete_per_job", "ms", del.Beta[1], lo, hi, del.N, del.Residual, "least squares of DELETE /api/tasks/{id} on jobs")
	return nil
}

// webhookHop is the median gap between a task's consecutive create:job arrivals.
func (f *fitter) webhookHop() error {
	var gaps []float64
	for _, c := range f.s.Creations {
		for i := 1; i < len(c.HookArrivals); i++ {
			gaps = append(gaps, ms(c.HookArrivals[i].Sub(c.HookArrivals[i-1])))
		}
	}
	if len(gaps) < 3 {
		f.notes = append(f.notes, fmt.Sprintf("webhook_hop: %d delivery gaps, kept from the base profile", len(gaps)))
		return nil
	}
	med, lo, hi := medianCI(gaps)
	_, resid := distFit(gaps)
	f.p.WebhookHop = msDur(med)
	f.scalar("webhook_hop", "ms", med, lo, hi, len(gaps), resid, "median gap between a task's consecutive create:job deliveries (includes the receiver's own answer time)")
	return nil
}

func sortedQualities(c cvatsim.QualityCost) []int {
	qs := make([]int, 0, len(c))
	for q := range c {
		qs = append(qs, q)
	}
	sort.Ints(qs)
	return qs
}
