package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cvatbench/cvatbench/report"
)

// Formats of compare: the table ones and JSON (a comparison has no flat CSV shape).
var compareFormats = []string{report.FormatTable, report.FormatMarkdown, report.FormatJSON}

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "compare two saved runs per strategy, with a verdict only beyond run-to-run noise",
		ArgsUsage: "A B",
		Description: "For each strategy in both runs: end-to-end p50 and p99, detection p50 and requests per trial, " +
			"B - A with a seeded bootstrap interval from the per-trial values in trials.jsonl, and Mann–Whitney U " +
			"for the p50. better/worse only when the interval excludes 0, else ~.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: report.FormatTable, Usage: "output format: " + strings.Join(compareFormats, ", ")},
			&cli.IntFlag{Name: "resamples", Value: report.DefaultResamples, Usage: "bootstrap resamples per metric (>= 100)"},
			&cli.Float64Flag{Name: "confidence", Value: report.DefaultConfidence, Usage: "bootstrap interval level, in (0, 1)"},
			&cli.Uint64Flag{Name: "seed", Value: report.DefaultCompareSeed, Usage: "bootstrap seed (same seed, same output)"},
			&cli.IntFlag{Name: "min-trials", Value: report.DefaultMinTrials, Usage: "fewer ok trials on a side: verdict n/a"},
			&cli.StringFlag{Name: "fail-on", Usage: "worse: exit 4 when any change of b against a is worse (a regression gate for CI)"},
		},
		Action: compareAction,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError("compare: %v", err)
		},
	}
}

func compareAction(c *cli.Context) error {
	args := c.Args().Slice()
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			return usageError("compare: %q after a directory: flags go first (cvatbench compare [flags] A B)", a)
		}
	}
	if len(args) != 2 {
		return usageError("compare: want two results directories A B, got %d", len(args))
	}
	format := c.String("format")
	var errs []string
	if !slices.Contains(compareFormats, format) {
		errs = append(errs, fmt.Sprintf("unknown format %q (valid: %s)", format, strings.Join(compareFormats, ", ")))
	}
	opts := report.CompareOptions{Resamples: c.Int("resamples"), Confidence: c.Float64("confidence"),
		Seed: c.Uint64("seed"), MinTrials: c.Int("min-trials")}
	if opts.Resamples < 100 {
		errs = append(errs, fmt.Sprintf("--resamples %d is below 100", opts.Resamples))
	}
	if !(opts.Confidence > 0 && opts.Confidence < 1) {
		errs = append(errs, fmt.Sprintf("--confidence %g is outside (0, 1)", opts.Confidence))
	}
	if opts.MinTrials < 2 {
		errs = append(errs, fmt.Sprintf("--min-trials %d is below 2", opts.MinTrials))
	}
	if f := c.String("fail-on"); f != "" && f != report.VerdictWorse {
		errs = append(errs, fmt.Sprintf("--fail-on %q: want %q", f, report.VerdictWorse))
	}
	if len(errs) > 0 {
		return usageError("compare: %s", strings.Join(errs, "; "))
	}
	a, err := report.Load(args[0])
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	b, err := report.Load(args[1])
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	cmp, err := report.Compare(a, b, opts)
	if err != nil {
		return err
	}
	r := report.CompareTable(cmp, format == report.FormatMarkdown)
	if format == report.FormatJSON {
		r = report.CompareJSON(cmp)
	}
	if err := r(c.App.Writer); err != nil {
		return err
	}
	if worse := cmp.Worse(); c.String("fail-on") == report.VerdictWorse && len(worse) > 0 {
		var names []string
		for _, ch := range worse {
			names = append(names, ch.Strategy+" "+ch.Metric)
		}
		return cli.Exit(fmt.Sprintf("compare: %d changes worse: %s", len(worse), strings.Join(names, ", ")), exitThreshold)
	}
	return nil
}
