package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/calibrate"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/strategies"
)

// calibrateCommand measures a server and writes the emulator profile that fits it.
func calibrateCommand() *cli.Command {
	d := calibrate.DefaultDesign()
	return &cli.Command{
		Name:  "calibrate",
		Usage: "measure a CVAT server's timing and write the emulator profile that fits it",
		Description: "Runs a designed experiment (about a minute on a default CVAT 2.73): sequential creations over task " +
			"sizes, job counts and qualities, a concurrent phase, endpoint latencies. Prints every term with a 95% " +
			"interval and writes a profile file (docs/profile-file.md) for run --sim-profile and sim --profile. " +
			"Without --url it calibrates the embedded emulator (--sim-profile). Deletes everything it created.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Usage: "CVAT base URL; empty: embedded emulator"},
			&cli.StringFlag{Name: "sim-profile", Value: "cvat-default", Usage: "embedded emulator profile (name or file) without --url"},
			&cli.StringFlag{Name: "user", EnvVars: []string{"CVAT_USER"}, Usage: "CVAT user (logs in for a token; also measures Basic auth)"},
			&cli.StringFlag{Name: "password", EnvVars: []string{"CVAT_PASSWORD"}, Usage: "CVAT password"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"CVAT_ACCESS_TOKEN"}, Usage: "CVAT personal access token"},
			&cli.StringFlag{Name: "org", Usage: "organization slug; empty: personal sandbox"},
			&cli.StringFlag{Name: "out", Value: "results/calibrated-profile.json", Usage: "profile file to write; the raw samples go to FILE.samples.json"},
			&cli.StringFlag{Name: "name", Value: "calibrated", Usage: "name of the profile in the file"},
			&cli.StringFlag{Name: "base-profile", Value: "cvat-default", Usage: "profile whose values the unmeasurable terms keep"},
			&cli.StringFlag{Name: "receiver", Value: "auto", Usage: "webhook receiver for the clock offset and the webhook hop: on, off, auto (on for a loopback --url, the emulator, or with --webhook-url)"},
			&cli.StringFlag{Name: "webhook-listen", Value: strategies.DefaultWebhookListen, Usage: "webhook receiver listen address (as for run)"},
			&cli.StringFlag{Name: "webhook-url", Usage: "URL the server delivers webhooks to; empty: from --webhook-listen"},
			&cli.IntFlag{Name: "repeats", Value: d.Repeats, Usage: "creations per design point"},
			&cli.DurationFlag{Name: "timeout", Value: d.Timeout, Usage: "per creation: a server that has not finished it by then fails the calibration"},
			&cli.IntFlag{Name: "expected-workers", Value: d.ExpectedWorkers, Usage: "import workers expected; the concurrent phase runs twice as many creations at once"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the images (and of the embedded emulator)"},
			&cli.StringFlag{Name: "from-samples", Usage: "fit the raw samples of an earlier calibration (FILE.samples.json) instead of measuring"},
		},
		Action: calibrateAction,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError("calibrate: %v", err)
		},
	}
}

func calibrateAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("calibrate: unexpected arguments %q", c.Args().Slice())
	}
	d := calibrate.DefaultDesign()
	d.Repeats, d.ExpectedWorkers, d.Timeout = c.Int("repeats"), c.Int("expected-workers"), c.Duration("timeout")
	var problems []string
	if err := d.Validate(); err != nil {
		problems = append(problems, oneLine(err))
	}
	base, err := cvatsim.LoadProfile(c.String("base-profile"))
	if err != nil {
		problems = append(problems, "--base-profile: "+err.Error())
	}
	receiver := c.String("receiver")
	if receiver != "auto" && receiver != "on" && receiver != "off" {
		problems = append(problems, fmt.Sprintf("--receiver %q: want on, off or auto", receiver))
	}
	if err := strategies.CheckWebhookAddress(c.String("webhook-listen"), c.String("webhook-url")); err != nil {
		problems = append(problems, oneLine(err))
	}
	out := c.String("out")
	if out == "" || c.String("name") == "" {
		problems = append(problems, "--out and --name must not be empty")
	}
	target := c.String("url")
	if target != "" {
		if msg := checkServerURL(target); msg != "" {
			problems = append(problems, "--url: "+msg)
		}
	}
	if len(problems) > 0 {
		return usageError("calibrate: %s", strings.Join(problems, "; "))
	}
	if from := c.String("from-samples"); from != "" {
		f, err := os.Open(from)
		if err != nil {
			return usageError("calibrate: --from-samples: %v", err)
		}
		samples, err := calibrate.ReadSamples(f)
		f.Close()
		if err != nil {
			return usageError("calibrate: --from-samples %s: %v", from, err)
		}
		return writeCalibration(c, samples, base, out, false)
	}
	ctx := c.Context
	listen := c.String("webhook-listen")
	opts := calibrate.Options{Design: d, Progress: c.App.ErrWriter, Seed: c.Int64("seed"), Receiver: receiver == "on",
		WebhookURL: c.String("webhook-url"), Net: calibrate.Network{Listen: func() (net.Listener, error) { return net.Listen("tcp", listen) }}}
	var client *cvat.Client
	if target == "" {
		prof, err := cvatsim.LoadProfile(c.String("sim-profile"))
		if err != nil {
			return usageError("calibrate: --sim-profile: %v", err)
		}
		_, baseURL, stop, err := startEmulator(prof, c.Int64("seed"), false, cvatsim.WhatIf{})
		if err != nil {
			return err
		}
		defer stop()
		if client, err = login(ctx, baseURL, simUser, simPassword, "", ""); err != nil {
			return err
		}
		basic, _ := cvat.New(cvat.Config{BaseURL: baseURL, Auth: cvat.Basic(simUser, simPassword)})
		opts.Basic, opts.Server, opts.Auth = basic, "embedded:"+c.String("sim-profile"), "token"
		opts.Receiver = receiver != "off"
	} else {
		user, password, token, err := credentials(c, "calibrate")
		if err != nil {
			return err
		}
		if client, err = login(ctx, target, user, password, token, c.String("org")); err != nil {
			return err
		}
		opts.Server, opts.Auth = bench.RedactURL(target), "token"
		if token != "" {
			opts.Auth = "bearer"
		}
		if password != "" {
			opts.Basic, _ = cvat.New(cvat.Config{BaseURL: target, Auth: cvat.Basic(user, password), Org: c.String("org")})
		}
		opts.Receiver = receiver == "on" || (receiver == "auto" && (usePingClock("auto", target) || opts.WebhookURL != ""))
	}
	samples, err := calibrate.Run(ctx, client, opts)
	if err != nil {
		return fmt.Errorf("calibrate: %s", oneLine(err))
	}
	return writeCalibration(c, samples, base, out, true)
}

// writeCalibration fits samples, prints the table and writes the profile file (and, for a fresh
// measurement, the raw samples next to it).
func writeCalibration(c *cli.Context, samples *calibrate.Samples, base cvatsim.Profile, out string, fresh bool) error {
	if fresh {
		// The raw record first: it is worth keeping even when the fit fails.
		if err := writeAtomic(out+".samples.json", samples.WriteJSON); err != nil {
			return fmt.Errorf("calibrate: %w", err)
		}
	}
	pf, err := calibrate.Fit(samples, base, c.String("name"))
	if err != nil {
		if fresh {
			return fmt.Errorf("calibrate: %s (raw samples in %s.samples.json)", oneLine(err), out)
		}
		return fmt.Errorf("calibrate: %s", oneLine(err))
	}
	if err := calibrate.WriteTable(c.App.Writer, pf); err != nil {
		return err
	}
	if err := writeAtomic(out, func(w io.Writer) error { return cvatsim.WriteProfile(w, pf) }); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	fmt.Fprintf(c.App.ErrWriter, "profile: %s\n", out)
	return nil
}

// writeAtomic writes what fill produces to path through a temporary file in the same directory, so a
// failure leaves no file that looks complete.
func writeAtomic(path string, fill func(w io.Writer) error) error {
	var buf bytes.Buffer
	if err := fill(&buf); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".calibrate-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(buf.Bytes())
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
