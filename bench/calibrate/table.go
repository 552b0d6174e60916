package calibrate

import (
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/cvatbench/cvatbench/cvatsim"
)

// WriteTable prints the fit of every term: estimate, 95 % interval, samples, residual spread and method.
// Terms the experiment does not measure say so and show the value they keep.
func WriteTable(w io.Writer, pf cvatsim.ProfileFile) error {
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithAlignment(tw.Alignment{tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignLeft}))
	t.Header([]string{"term", "estimate", "95% CI", "n", "resid", "unit"})
	for _, f := range pf.Fit {
		row := []string{f.Term, "-", "-", "-", "-", "not measured: kept"}
		if f.Measured {
			row = []string{f.Term, num(f.Estimate), "[" + num(f.Low) + ", " + num(f.High) + "]", strconv.Itoa(f.N), num(f.Residual), f.Unit}
		}
		if err := t.Append(row); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("render calibration table: %w", err)
	}
	for _, n := range pf.Notes {
		if _, err := fmt.Fprintln(w, "note: "+n); err != nil {
			return err
		}
	}
	return nil
}

func num(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "inf"
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}
