package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/report"
)

// Embedded emulator credentials (cvatsim's defaults).
const simUser, simPassword = "admin", "admin"

func runCommand() *cli.Command {
	d := bench.DefaultConfig()
	return &cli.Command{
		Name:  "run",
		Usage: "create tasks, wait for their jobs with each strategy, and write results/<run-id>/",
		Description: "Without --url, runs against an embedded CVAT 2.73 emulator (--sim-profile). Prints the summary " +
			"table, read back from the results directory, to stdout and a progress line to stderr.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "url", Usage: "CVAT base URL; empty: embedded emulator"},
			&cli.StringFlag{Name: "sim-profile", Value: d.SimProfile, Usage: "emulator profile: " + strings.Join(cvatsim.ProfileNames(), ", ") + ", or a profile file (docs/profile-file.md)"},
			&cli.BoolFlag{Name: "sim-static-cache", Usage: "embedded emulator with CVAT_ALLOW_STATIC_CACHE on: every chunk is JPEG-encoded at --image-quality during creation (the setting under which image_quality changes creation time)"},
			&cli.StringFlag{Name: "sim-faults", Usage: "embedded emulator faults, active once the client logged in: " + cvatsim.FaultSyntax()},
			&cli.StringFlag{Name: "sim-what-if", Usage: "embedded emulator behaviours no CVAT release has: " + cvatsim.WhatIfPreallocJobs + " (the task's job rows exist from the upload's 202 on; the prealloc strategy needs it)"},
			&cli.StringFlag{Name: "user", EnvVars: []string{"CVAT_USER"}, Usage: "CVAT user (logs in for a token)"},
			&cli.StringFlag{Name: "password", EnvVars: []string{"CVAT_PASSWORD"}, Usage: "CVAT password"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"CVAT_ACCESS_TOKEN"}, Usage: "CVAT personal access token"},
			&cli.StringFlag{Name: "org", Usage: "organization slug; empty: personal sandbox"},
			&cli.StringFlag{Name: "clock", Value: "auto", Usage: "clock-offset estimate for a real server: ping (webhook pings to a receiver on 127.0.0.1, for a server on this host; ±1 ms), upload (per trial, from the upload call; ±tens of ms), auto (ping for a loopback --url, else upload)"},
			&cli.StringSliceFlag{Name: "strategies", Value: cli.NewStringSlice(d.Strategies...), Usage: "wait strategies to compare, repeatable; each is NAME[:key=value]..., e.g. poll:interval=25ms or backoff:initial=50ms:factor=1.5:max=2s, its own row named by its canonical spelling. Keys: poll interval; sdk, cli period; ui seed; backoff initial, factor, max, jitter, seed; webhook safety. A bare name takes the --poll-interval family of flags"},
			&cli.IntFlag{Name: "tasks", Value: d.TasksPerStrategy, Usage: fmt.Sprintf("tasks per strategy (and image quality and segment size), at most %d, and at most %d trials in the run", record.MaxTasksPerStrategy, record.MaxTrials)},
			&cli.IntFlag{Name: "concurrency", Value: d.Concurrency, Usage: fmt.Sprintf("closed loop: trials in flight, at most %d", record.MaxConcurrency)},
			&cli.Float64Flag{Name: "rate", Usage: "open loop: trials started per second (instead of --concurrency)"},
			&cli.IntFlag{Name: "batch", Usage: fmt.Sprintf("create and upload a strategy's tasks N at a time, at most %d, and wait for the whole batch: per task for per-task strategies, with calls covering the batch's project for project-poll and project-webhook. Closed loop: --concurrency is batches in flight, --timeout bounds a batch", record.MaxBatch)},
			&cli.StringFlag{Name: "run-id", Usage: "use this run id (as `run` makes them, e.g. 20261203T120000Z-1a2b) instead of a new one: the shards of one run share it"},
			&cli.StringFlag{Name: "shard", Usage: "I/N: run the I-th (0-based) of N shares of the run, the trials whose seq is I modulo N and I's share of --concurrency; needs --run-id. report --merge of the N results directories is the whole run"},
			&cli.IntFlag{Name: "max-in-flight", Usage: fmt.Sprintf("open loop: trials at once at most; a trial due beyond it is dropped: recorded, never started, reported apart (0: %d)", record.MaxConcurrency)},
			&cli.IntFlag{Name: "images", Value: d.Images, Usage: fmt.Sprintf("images per task, at most %d; generated: images × width × height at most %d pixels", record.MaxImages, record.MaxWorkloadPixels)},
			&cli.StringFlag{Name: "image-size", Value: d.ImageSize, Usage: fmt.Sprintf("generated image size WxH, sides at most %d", record.MaxImageSide)},
			&cli.StringFlag{Name: "image-format", Value: d.ImageFormat, Usage: "generated image format: jpeg, png"},
			&cli.StringFlag{Name: "images-dir", Usage: "upload these images (sorted by name) instead of generated ones"},
			&cli.IntSliceFlag{Name: "image-quality", Value: cli.NewIntSlice(d.ImageQualities...), Usage: "image_quality; several values make a sweep"},
			&cli.IntSliceFlag{Name: "segment-size", Value: cli.NewIntSlice(d.SegmentSizes...), Usage: "frames per job, 0: one job; several values make a sweep, as --image-quality does"},
			&cli.StringFlag{Name: "chunks", Usage: "after each trial, outside its wait, read compressed chunks and score them against the originals: first (chunk 0 of the first job, cold then warm), all (every chunk), none; default: first in an --image-quality sweep or with --quality-target, else none"},
			&cli.StringFlag{Name: "upload-mode", Value: d.UploadMode, Usage: "single, sdk or tus"},
			&cli.Int64Flag{Name: "seed", Value: d.Seed, Usage: "seed of the schedule, images and jitter"},
			&cli.DurationFlag{Name: "timeout", Value: d.Timeout, Usage: "per trial: create, upload and wait"},
			&cli.DurationFlag{Name: "duration", Usage: "run until this much time is up (trials in flight finish), or until --tasks are done; without --tasks, as many as the limits allow"},
			&cli.StringFlag{Name: "out", Value: d.OutDir, Usage: "results directory"},
			&cli.DurationFlag{Name: "poll-interval", Value: d.PollInterval, Usage: "poll strategy interval"},
			&cli.DurationFlag{Name: "sdk-period", Value: d.SDKPeriod, Usage: "sdk strategy status_check_period"},
			&cli.DurationFlag{Name: "cli-period", Value: d.CLIPeriod, Usage: "cli strategy completion_verification_period"},
			&cli.DurationFlag{Name: "backoff-initial", Value: d.BackoffInitial, Usage: "backoff strategy first pause"},
			&cli.Float64Flag{Name: "backoff-factor", Value: d.BackoffFactor, Usage: "backoff strategy growth per step"},
			&cli.DurationFlag{Name: "backoff-max", Value: d.BackoffMax, Usage: "backoff strategy pause cap"},
			&cli.Float64Flag{Name: "backoff-jitter", Value: d.BackoffJitter, Usage: "backoff strategy jitter fraction"},
			&cli.DurationFlag{Name: "safety-poll", Value: d.SafetyPoll, Usage: "webhook strategy safety poll period"},
			&cli.StringFlag{Name: "webhook-listen", Value: d.WebhookListen, Usage: "webhook receiver listen address"},
			&cli.StringFlag{Name: "webhook-url", Value: d.WebhookURL, Usage: "URL CVAT delivers webhooks to; empty: from --webhook-listen"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: report.FormatTable, Usage: "summary on stdout: " + strings.Join(report.Formats, ", ") + " (as report --format)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress on stderr (the table and errors still print)"},
			sloFlag(), // report's thresholds, checked against the saved run (see report.go)
			qualityTargetFlag(),
		}, metricsFlags()...),
		Action: runAction,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError("run: %v", err)
		},
	}
}

// runConfig turns flags into a bench.Config; it is also what tests check.
func runConfig(c *cli.Context) bench.Config {
	cfg := bench.Config{
		Strategies:       c.StringSlice("strategies"),
		TasksPerStrategy: c.Int("tasks"),
		Concurrency:      c.Int("concurrency"),
		Rate:             c.Float64("rate"),
		Batch:            c.Int("batch"),
		MaxInFlight:      c.Int("max-in-flight"),
		Images:           c.Int("images"),
		ImageSize:        c.String("image-size"),
		ImageFormat:      c.String("image-format"),
		ImagesDir:        c.String("images-dir"),
		ImageQualities:   c.IntSlice("image-quality"),
		SegmentSizes:     c.IntSlice("segment-size"),
		Chunks:           c.String("chunks"),
		Seed:             c.Int64("seed"),
		Timeout:          c.Duration("timeout"),
		Duration:         c.Duration("duration"),
		UploadMode:       c.String("upload-mode"),
		Org:              c.String("org"),
		Target:           c.String("url"),
		OutDir:           c.String("out"),
		PollInterval:     c.Duration("poll-interval"),
		SDKPeriod:        c.Duration("sdk-period"),
		CLIPeriod:        c.Duration("cli-period"),
		BackoffInitial:   c.Duration("backoff-initial"),
		BackoffMax:       c.Duration("backoff-max"),
		BackoffFactor:    c.Float64("backoff-factor"),
		BackoffJitter:    c.Float64("backoff-jitter"),
		SafetyPoll:       c.Duration("safety-poll"),
		WebhookListen:    c.String("webhook-listen"),
		WebhookURL:       c.String("webhook-url"),
		RunID:            c.String("run-id"),
	}
	if cfg.Target == "" {
		cfg.SimProfile = c.String("sim-profile")
		cfg.SimFaults = c.String("sim-faults")
		cfg.SimStaticCache = c.Bool("sim-static-cache")
		if f, err := cvatsim.ParseFaults(cfg.SimFaults); err == nil && !f.IsZero() {
			cfg.SimFaults = f.String() // canonical in meta.json
		} else if err == nil {
			cfg.SimFaults = ""
		}
	}
	cfg.SimWhatIf = c.String("sim-what-if")
	if w, err := cvatsim.ParseWhatIf(cfg.SimWhatIf); err == nil {
		cfg.SimWhatIf = w.String() // canonical in meta.json
	}
	cfg = bench.Canonical(cfg)
	// --duration alone runs until the time is up: the default task count does not apply.
	if cfg.Duration > 0 && !c.IsSet("tasks") {
		cells := max(len(cfg.Strategies)*len(cfg.ImageQualities)*len(cfg.SegmentSizes), 1)
		cfg.TasksPerStrategy = min(record.MaxTasksPerStrategy, record.MaxTrials/cells)
	}
	// --rate alone means open loop: the default concurrency does not apply.
	if c.IsSet("rate") && !c.IsSet("concurrency") {
		cfg.Concurrency = 0
	}
	// --images-dir alone uploads every image of the directory.
	if cfg.ImagesDir != "" && !c.IsSet("images") {
		cfg.Images = 0
	}
	return cfg
}

// oneLine joins the lines of a multi-error, so bad input is reported on one line.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func runAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageError("unexpected arguments %q: flags go first", c.Args().Slice())
	}
	cfg := runConfig(c)
	// Thresholds are checked before any task is created: a typo must not cost a run (or pass silently).
	slos, sloErr := report.ParseSLOs(c.StringSlice("slo"))
	if sloErr == nil {
		sloErr = report.CheckSLOStrategies(slos, cfg.Strategies)
	}
	var urlErr error
	if cfg.Target != "" {
		if p := checkServerURL(cfg.Target); p != "" {
			urlErr = errors.New(p)
		}
	}
	// The default concurrency is a default, not a request: a run of fewer trials runs them all at once.
	if !c.IsSet("concurrency") && cfg.Rate == 0 && cfg.Trials() > 0 && cfg.Concurrency > cfg.Trials() {
		fmt.Fprintf(c.App.ErrWriter, "run: concurrency %d lowered to %d, the number of trials\n", cfg.Concurrency, cfg.Trials())
		cfg.Concurrency = cfg.Trials()
	}
	if c.IsSet("shard") {
		i, n, err := parseShard(c.String("shard"))
		if err != nil {
			return usageError("run: --shard: %s", err)
		}
		cfg.ShardIndex, cfg.ShardCount = i, n
	}
	target, err := parseQualityTarget(c, "run")
	if err != nil {
		return err
	}
	if target != nil && !c.IsSet("chunks") {
		cfg.Chunks = record.ChunksFirst // a quality target is checked against the chunks
	}
	outOpts := report.Options{Format: c.String("output")}
	if err := outOpts.Validate(); err != nil {
		return usageError("run: --output: %s", oneLine(err))
	}
	whatIf, err := cvatsim.ParseWhatIf(c.String("sim-what-if"))
	if err != nil {
		return usageError("run: --sim-what-if: %s", oneLine(err))
	}
	if err := errors.Join(urlErr, bench.Validate(cfg), sloErr); err != nil {
		return usageError("run: %s", oneLine(err))
	}
	if target != nil && cfg.ChunkMode() == record.ChunksNone {
		return usageError("run: --quality-target needs the chunk probe, which --chunks none turns off")
	}
	if c.IsSet("sim-static-cache") && cfg.Target != "" {
		return usageError("run: --sim-static-cache needs the embedded emulator (no --url)")
	}
	if c.IsSet("sim-faults") && cfg.Target != "" {
		return usageError("run: --sim-faults needs the embedded emulator (no --url)")
	}
	faults, err := cvatsim.ParseFaults(c.String("sim-faults"))
	if err != nil {
		return usageError("run: --sim-faults: %s", oneLine(err))
	}
	ctx := c.Context
	ver, rev := buildInfo()
	metrics, err := startMetrics(c, buildMeta{Version: ver, Commit: rev})
	if err != nil {
		return err
	}
	defer metrics.Close()
	opts := []bench.Option{bench.WithVersion(ver, rev), bench.WithObserver(metrics.Observer())}
	switch {
	case c.Bool("quiet"):
	case isTerminal(c.App.ErrWriter):
		opts = append(opts, bench.WithProgress(c.App.ErrWriter))
	default: // a log file or CI: plain lines, not one endless line of carriage returns
		opts = append(opts, bench.WithProgressLines(c.App.ErrWriter, progressLineEvery))
	}

	clockMode := c.String("clock")
	if clockMode != "auto" && clockMode != "ping" && clockMode != "upload" {
		return usageError("run: --clock %q: want auto, ping or upload", clockMode)
	}
	var client *cvat.Client
	if cfg.Target == "" {
		prof, err := cvatsim.LoadProfile(cfg.SimProfile)
		if err != nil {
			return usageError("run: --sim-profile: %v", err)
		}
		if c.String("user") != "" || c.String("password") != "" || c.String("token") != "" || c.String("org") != "" { // an empty CVAT_* variable counts as set for urfave
			return usageError("run: --user, --password, --token and --org need --url (the embedded emulator has its own admin)")
		}
		var terms bytes.Buffer
		if err := cvatsim.WriteProfile(&terms, cvatsim.ProfileFileOf(prof, "")); err != nil {
			return err
		}
		opts = append(opts, bench.WithEmulatorTerms(terms.Bytes()))
		srv, base, stop, err := startEmulator(prof, cfg.Seed, cfg.SimStaticCache, whatIf)
		if err != nil {
			return err
		}
		defer stop()
		client, err = login(ctx, base, simUser, simPassword, "", "")
		if err != nil {
			return err
		}
		if err := srv.SetFaults(faults); err != nil { // after the login: the run's own calls are faulted
			return usageError("run: --sim-faults: %v", err)
		}
		if !faults.IsZero() {
			opts = append(opts, bench.WithFaultCounts(srv.FaultCounts))
		}
		opts = append(opts, bench.WithGroundTruth(func(_ context.Context, taskID int) (time.Time, bool, error) {
			tl, ok := srv.Timeline(taskID)
			if !ok || tl.JobsVisibleAt.IsZero() {
				return time.Time{}, false, nil
			}
			return tl.JobsVisibleAt, true, nil
		}))
	} else {
		user, password, token, err := credentials(c, "run")
		if err != nil {
			return err
		}
		client, err = login(ctx, cfg.Target, user, password, token, cfg.Org)
		if err != nil {
			return err
		}
		if usePingClock(clockMode, cfg.Target) {
			opts = append(opts, bench.WithPingClock("127.0.0.1:0", ""))
		}
	}
	opts = append(opts, bench.WithClient(client))

	r, err := bench.New(cfg, opts...)
	if err != nil {
		return usageError("run: %s", oneLine(err))
	}
	abandon := func() {
		if err := r.Abandon(); err != nil {
			fmt.Fprintf(c.App.ErrWriter, "cvatbench: run: %s\n", oneLine(err))
		}
	}
	onHardExit.Store(&abandon)
	defer onHardExit.Store(nil)
	runStart := time.Now()
	res, runErr := r.Run(ctx)
	runDuration := time.Since(runStart)
	if res.Dir == "" { // failed before the first trial: the runner left no directory, so there is no table
		for _, e := range res.CleanupErrors {
			fmt.Fprintf(c.App.ErrWriter, "cleanup: %s\n", e)
		}
		if runErr == nil {
			runErr = errors.New("no results directory") // not expected: Run reports why it wrote none
		}
		return fmt.Errorf("run: %w", runErr)
	}
	fmt.Fprintf(c.App.ErrWriter, "results: %s\n", res.Dir)
	for _, e := range res.CleanupErrors {
		fmt.Fprintf(c.App.ErrWriter, "cleanup: %s\n", e)
	}
	// The table comes from the files through printRun, as in `cvatbench report <dir>`: the same bytes later.
	saved, err := report.Load(res.Dir)
	if err != nil {
		return errors.Join(runErr, err)
	}
	thresholdErr := printRun(c.App.Writer, c.App.ErrWriter, saved, outOpts, slos, target)
	failedSLOs := 0
	if results, err := report.EvaluateSLOs(saved, slos); err == nil {
		failedSLOs = len(report.Failed(results))
	}
	// Push, write the textfile and linger after the table is out; the saved trials are what gets exported.
	if err := metrics.Finish(ctx, saved.Trials, runDuration, failedSLOs, runErr == nil && failedSLOs == 0); err != nil {
		runErr = errors.Join(runErr, err) // Finish names itself ("metrics: push ...")
	}
	if runErr != nil {
		// A failed run exits 1 even if thresholds were breached too: its numbers are incomplete.
		if thresholdErr != nil && !isExitCode(thresholdErr, exitThreshold) {
			return errors.Join(runErr, thresholdErr)
		}
		return fmt.Errorf("run: %w", runErr)
	}
	return thresholdErr
}

// progressLineEvery spaces the plain progress lines written when stderr is not a terminal.
const progressLineEvery = 10 * time.Second

// isTerminal reports whether w is a character device (a terminal), where carriage-return updates work.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// isExitCode reports whether err carries exit code code.
func isExitCode(err error, code int) bool {
	var ec cli.ExitCoder
	return errors.As(err, &ec) && ec.ExitCode() == code
}

// startEmulator serves cvatsim over real HTTP on a loopback port, so the client and the webhook path behave as
// against a real server.
func startEmulator(prof cvatsim.Profile, seed int64, staticCache bool, whatIf cvatsim.WhatIf) (*cvatsim.Server, string, func(), error) {
	srv, err := cvatsim.New(cvatsim.Options{Profile: prof, Username: simUser, Password: simPassword, Seed: seed,
		AllowStaticCache: staticCache, WhatIf: whatIf})
	if err != nil {
		return nil, "", nil, fmt.Errorf("start emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, "", nil, fmt.Errorf("start emulator: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }() // returns ErrServerClosed after Close
	stop := func() {
		_ = hs.Close()
		srv.Close()
	}
	return srv, "http://" + ln.Addr().String(), stop, nil
}

// login builds a client that authenticates with a token: a personal access token as given, or the key of a
// password login. Basic auth is avoided because CVAT hashes the password on every request (API.md §2.1).
func login(ctx context.Context, base, user, password, token, org string) (*cvat.Client, error) {
	auth := cvat.Bearer(token)
	if token == "" {
		key, err := cvat.Login(ctx, base, user, password, nil)
		if err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		auth = cvat.Token(key)
	}
	c, err := cvat.New(cvat.Config{BaseURL: base, Auth: auth, Org: org})
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	return c, nil
}

// usePingClock tells whether the run estimates the clock offset with webhook pings: asked for, or "auto" with
// a server on a loopback address (its pings reach a receiver on 127.0.0.1).
func usePingClock(mode, target string) bool {
	if mode != "auto" {
		return mode == "ping"
	}
	return cvat.IsLoopbackURL(target)
}

// credentials reads --user, --password and --token (or their CVAT_* variables) for a command that talks to
// --url: a token, or a user and a password, not both.
func credentials(c *cli.Context, cmd string) (user, password, token string, err error) {
	user, password, token = c.String("user"), c.String("password"), c.String("token")
	switch {
	case token != "" && (user != "" || password != ""):
		return "", "", "", usageError("%s: give --token or --user/--password, not both", cmd)
	case token == "" && (user == "" || password == ""):
		return "", "", "", usageError("%s: --url needs --token or both --user and --password (or CVAT_ACCESS_TOKEN, CVAT_USER, CVAT_PASSWORD)", cmd)
	}
	return user, password, token, nil
}

// parseShard reads --shard I/N: 0 <= I < N.
func parseShard(s string) (index, count int, err error) {
	is, ns, ok := strings.Cut(s, "/")
	if ok {
		index, err = strconv.Atoi(is)
		if err == nil {
			count, err = strconv.Atoi(ns)
		}
	}
	if !ok || err != nil || count < 1 || index < 0 || index >= count {
		return 0, 0, fmt.Errorf("%q is not INDEX/COUNT with 0 <= INDEX < COUNT (e.g. 0/4 for the first of four)", s)
	}
	return index, count, nil
}
