package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cvatbench/cvatbench/report"
)

// sloFlag is shared by run and report.
func sloFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "slo", Usage: "threshold `[strategy:]metric<value`, repeatable: metrics p<N> and " +
		"detect_p<N> (durations with units, e.g. webhook:p99<2s), errors (ratio or %, e.g. errors<1%), req (mean " +
		"requests per trial); < or <=. A breach exits 4 after the table"}
}

// qualityTargetFlag is shared by run and report.
func qualityTargetFlag() cli.Flag {
	return &cli.StringFlag{Name: "quality-target", Usage: "fidelity floor `ssim>=V|psnr>=DB` every scored frame must reach: " +
		"prints the lowest image quality of the sweep that meets it and its saving in bytes against the highest; none: exit 4"}
}

// parseQualityTarget reads --quality-target; nil when it is not given.
func parseQualityTarget(c *cli.Context, cmd string) (*report.QualityTarget, error) {
	if !c.IsSet("quality-target") {
		return nil, nil
	}
	t, err := report.ParseQualityTarget(c.String("quality-target"))
	if err != nil {
		return nil, usageError("%s: --%v", cmd, err)
	}
	return &t, nil
}

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "re-render a saved run (or merge several) from its results directory",
		ArgsUsage: "DIR | --merge DIR1 DIR2 ...",
		Description: "Prints the summary table of results/<run-id>/ exactly as `cvatbench run` printed it, or in another " +
			"format. --plots writes DIR/plots/*.svg,png; --html writes DIR/report.html (self-contained). --merge " +
			"combines runs from several machines into --out (default: a merged-<hash> directory beside the first).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: report.FormatTable, Usage: "output format: " + strings.Join(report.Formats, ", ")},
			&cli.Float64SliceFlag{Name: "percentiles", Value: cli.NewFloat64Slice(report.DefaultPercentiles...),
				Usage: "end-to-end percentiles in (0, 100], e.g. 50,90,99,99.9"},
			sloFlag(),
			qualityTargetFlag(),
			&cli.BoolFlag{Name: "plots", Usage: "write percentile, frontier and (sweeps) quality plots to DIR/plots/ as SVG and PNG"},
			&cli.BoolFlag{Name: "html", Usage: "write DIR/report.html: tables, run facts and plots in one file"},
			&cli.BoolFlag{Name: "merge", Usage: "merge the runs given as arguments into one results directory"},
			&cli.StringFlag{Name: "out", Usage: "with --merge: the directory to create"},
		},
		Action: reportAction,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError("report: %v", err)
		},
	}
}

func reportAction(c *cli.Context) error {
	args := c.Args().Slice()
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			return usageError("report: %q after a directory: flags go first (cvatbench report [flags] DIR)", a)
		}
	}
	merge := c.Bool("merge")
	switch {
	case merge && len(args) < 2:
		return usageError("report: --merge needs at least two directories")
	case !merge && len(args) != 1:
		return usageError("report: want one results directory, got %d arguments (several: --merge)", len(args))
	case !merge && c.IsSet("out"):
		return usageError("report: --out only applies to --merge")
	}
	opts := report.Options{Format: c.String("format"), Percentiles: c.Float64Slice("percentiles")}
	if err := opts.Validate(); err != nil {
		return usageError("report: %s", oneLine(err))
	}
	slos, err := report.ParseSLOs(c.StringSlice("slo"))
	if err != nil {
		return usageError("report: %s", oneLine(err))
	}
	target, err := parseQualityTarget(c, "report")
	if err != nil {
		return err
	}

	var run *report.Run
	if merge {
		run, err = mergeRuns(c, args)
	} else {
		run, err = report.Load(args[0])
	}
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := report.CheckSLOStrategies(slos, report.RunStrategies(run)); err != nil {
		return usageError("report: %s", oneLine(err))
	}
	if target != nil && !report.HasChunkProbes(run) {
		return usageError("report: --quality-target: %s: %v", run.Dir, report.ErrNoChunkProbes)
	}
	if c.Bool("plots") {
		paths, err := report.WritePlots(run, run.Dir)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		for _, p := range paths {
			fmt.Fprintf(c.App.ErrWriter, "wrote %s\n", p)
		}
	}
	if c.Bool("html") {
		path, err := report.WriteHTML(run, run.Dir, opts)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		fmt.Fprintf(c.App.ErrWriter, "wrote %s\n", path)
	}
	return printRun(c.App.Writer, c.App.ErrWriter, run, opts, slos, target)
}

// printRun is the one way a run reaches stdout, for `run` and `report` alike: the rendering, then the SLO
// and quality-target verdicts on stderr (stdout stays a clean table, CSV or JSON). A breach of either is exit
// code 4.
func printRun(stdout, stderr io.Writer, run *report.Run, opts report.Options, slos []report.SLO, target *report.QualityTarget) error {
	sum, err := report.Render(stdout, run, opts)
	if err != nil {
		return err
	}
	var breaches []string
	if len(slos) > 0 {
		results, err := report.EvaluateSLOs(run, slos)
		if err != nil {
			return usageError("%s", oneLine(err))
		}
		if err := report.SLOReport(results)(stderr); err != nil {
			return err
		}
		if failed := report.Failed(results); len(failed) > 0 {
			breaches = append(breaches, fmt.Sprintf("%d of %d SLO checks failed", len(failed), len(results)))
		}
	}
	if target != nil {
		v, err := report.EvaluateQualityTarget(sum.Quality, *target)
		if err != nil {
			return fmt.Errorf("quality target: %w", err)
		}
		if err := report.WriteQualityVerdict(stderr, v); err != nil {
			return err
		}
		if !v.Met {
			breaches = append(breaches, "quality target "+target.String()+" not met")
		}
	}
	if len(breaches) > 0 {
		return cli.Exit(strings.Join(breaches, "; "), exitThreshold)
	}
	return nil
}

// mergeRuns loads dirs, merges them into --out, checks that the merged histograms tell the same story as the
// merged trials, and returns the merged run as written.
func mergeRuns(c *cli.Context, dirs []string) (*report.Run, error) {
	var runs []*report.Run
	for _, d := range dirs {
		r, err := report.Load(d)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	m, err := report.Merge(runs)
	if err != nil {
		return nil, err
	}
	out := c.String("out")
	if out == "" {
		out = filepath.Join(filepath.Dir(filepath.Clean(dirs[0])), m.Run.Meta.RunID)
	}
	if err := m.Write(out); err != nil {
		return nil, err
	}
	for _, w := range append(m.Warnings, report.CheckHistograms(m.Run)...) {
		fmt.Fprintf(c.App.ErrWriter, "merge: warning: %s\n", w)
	}
	fmt.Fprintf(c.App.ErrWriter, "merged %d runs (%d trials) into %s\n", len(runs), len(m.Run.Trials), out)
	again, err := report.Load(out)
	if err != nil {
		return nil, errors.Join(errors.New("merged directory does not read back"), err)
	}
	return again, nil
}
