package main

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cvatbench/cvatbench/cvatsim"
)

// simCommand serves the embedded CVAT 2.73 emulator until SIGINT/SIGTERM.
func simCommand() *cli.Command {
	return &cli.Command{
		Name:  "sim",
		Usage: "serve the embedded CVAT " + cvatsim.Version + " emulator",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "listen address (port 0 picks a free port)"},
			&cli.StringFlag{Name: "profile", Value: "cvat-default", Usage: "timing profile: " + strings.Join(cvatsim.ProfileNames(), ", ") + ", or a profile file (docs/profile-file.md)"},
			&cli.StringFlag{Name: "print-profile", Usage: "print the built-in profile `NAME` as a profile file to start from, and exit"},
			&cli.StringFlag{Name: "user", Value: cvatsim.DefaultUsername, Usage: "admin user name"},
			&cli.StringFlag{Name: "password", Value: cvatsim.DefaultPassword, Usage: "admin password (never printed)"},
			&cli.IntFlag{Name: "import-workers", Value: 0, Usage: "import queue workers (0: profile value)"},
			&cli.BoolFlag{Name: "one-job-per-user", Usage: "ONE_RUNNING_JOB_IN_QUEUE_PER_USER: serialize each user's creations"},
			&cli.BoolFlag{Name: "static-cache", Usage: "CVAT_ALLOW_STATIC_CACHE: build chunks during creation when use_cache=false"},
			&cli.DurationFlag{Name: "request-ttl", Value: cvatsim.DefaultRequestTTL, Usage: "expiry of finished requests"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the latency model"},
			&cli.IntFlag{Name: "api-slots", Value: -1, Usage: "API requests served at a time (0: unlimited; -1: profile value)"},
			&cli.DurationFlag{Name: "pickup", Value: -1, Usage: "queue pick-up delay (-1: profile value)"},
			&cli.DurationFlag{Name: "processing-median", Value: -1, Usage: "median of the fixed processing time (-1: profile value)"},
			&cli.DurationFlag{Name: "per-image", Value: -1, Usage: "processing cost per image (-1: profile value)"},
			&cli.DurationFlag{Name: "per-job", Value: -1, Usage: "processing cost per job (-1: profile value)"},
			&cli.DurationFlag{Name: "webhook-hop", Value: -1, Usage: "service time per webhook delivery (-1: profile value)"},
			&cli.StringFlag{Name: "faults", Usage: "inject faults: " + cvatsim.FaultSyntax()},
			&cli.StringFlag{Name: "what-if", Usage: "behaviours no CVAT release has: " + cvatsim.WhatIfPreallocJobs + " (a task's job rows exist from the upload's 202 on, filled in at the commit)"},
			&cli.BoolFlag{Name: "verbose", Usage: "log emulator events (and injected faults) to stderr"},
		},
		Action: runSim,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError("sim: %v", err)
		},
	}
}

// simOptions turns the flags into cvatsim.Options; errors are usage errors.
func simOptions(c *cli.Context) (cvatsim.Options, error) {
	var problems []string
	// A bad address is bad input (exit 2), found before anything starts, not a listen error at run time.
	if addr := c.String("addr"); addr == "" {
		problems = append(problems, "--addr must not be empty")
	} else if err := checkListenAddr(addr); err != nil {
		problems = append(problems, fmt.Sprintf("--addr %q: %v", addr, err))
	}
	prof, err := cvatsim.LoadProfile(c.String("profile"))
	if err != nil {
		problems = append(problems, "--profile: "+err.Error())
	}
	if c.Int("import-workers") < 0 {
		problems = append(problems, "--import-workers must be at least 1 (0: profile value)")
	}
	if c.Duration("request-ttl") <= 0 {
		problems = append(problems, "--request-ttl must be positive")
	}
	if c.String("user") == "" || c.String("password") == "" {
		problems = append(problems, "--user and --password must not be empty")
	}
	if n := c.Int("api-slots"); n >= 0 {
		prof.APISlots = n
	} else if n != -1 {
		problems = append(problems, "--api-slots must be 0 or more")
	}
	durations := []struct {
		flag string
		set  func(time.Duration)
	}{
		{"pickup", func(d time.Duration) { prof.PickUp = cvatsim.Dist{Base: d} }},
		{"processing-median", func(d time.Duration) { prof.Processing.Median = d }},
		{"per-image", func(d time.Duration) { prof.PerImage = d }},
		{"per-job", func(d time.Duration) { prof.PerJob = d }},
		{"webhook-hop", func(d time.Duration) { prof.WebhookHop = d }},
	}
	for _, d := range durations {
		v := c.Duration(d.flag)
		switch {
		case v == -1:
		case v < 0:
			problems = append(problems, "--"+d.flag+" must not be negative")
		default:
			d.set(v)
		}
	}
	faults, err := cvatsim.ParseFaults(c.String("faults"))
	if err != nil {
		problems = append(problems, "--faults: "+strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	whatIf, err := cvatsim.ParseWhatIf(c.String("what-if"))
	if err != nil {
		problems = append(problems, "--what-if: "+err.Error())
	}
	if len(problems) > 0 {
		return cvatsim.Options{}, usageError("sim: %s", strings.Join(problems, "; "))
	}
	opts := cvatsim.Options{
		Profile:              prof,
		Username:             c.String("user"),
		Password:             c.String("password"),
		ImportWorkers:        c.Int("import-workers"),
		OneRunningJobPerUser: c.Bool("one-job-per-user"),
		AllowStaticCache:     c.Bool("static-cache"),
		RequestTTL:           c.Duration("request-ttl"),
		Seed:                 c.Int64("seed"),
		Faults:               faults,
		WhatIf:               whatIf,
	}
	if c.Bool("verbose") {
		w := c.App.ErrWriter
		opts.Logf = func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	}
	return opts, nil
}

// runSim listens, prints the one line the conformance suite waits for, and
// serves until the context ends (SIGINT/SIGTERM), then shuts down gracefully.
func runSim(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("sim: unexpected arguments %q", c.Args().Slice())
	}
	if name := c.String("print-profile"); name != "" {
		prof, err := cvatsim.LookupProfile(name)
		if err != nil {
			return usageError("sim: --print-profile: %v", err)
		}
		return cvatsim.WriteProfile(c.App.Writer, cvatsim.ProfileFileOf(prof, "built-in profile "+name+" of cvatbench"))
	}
	opts, err := simOptions(c)
	if err != nil {
		return err
	}
	s, err := cvatsim.New(opts)
	if err != nil {
		return usageError("sim: %v", err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return fmt.Errorf("sim: listen on %s: %w", c.String("addr"), err)
	}
	fmt.Fprintf(c.App.ErrWriter, "cvatsim listening on http://%s\n", ln.Addr())
	if err := s.Serve(c.Context, ln); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}
