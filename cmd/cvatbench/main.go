// Command cvatbench measures how long CVAT takes from "create a task" until
// its job IDs are known, under several wait strategies.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Set by the Makefile through -ldflags; -X works only on package-level string variables.
var version, commit, date = "dev", "none", "unknown"

// Exit codes, documented in the README.
const (
	exitOK        = 0
	exitRuntime   = 1
	exitUsage     = 2
	exitThreshold = 4 // not 3: urfave/cli v2 uses 3 for "No help topic"

	// urfaveNoHelpTopic is the code urfave/cli v2 gives "No help topic for 'x'"; run reports it as exitUsage.
	urfaveNoHelpTopic = 3
)

// exitHardInterrupt is the code of a process ended by a second interrupt, as shells report SIGINT (128+2).
const exitHardInterrupt = 130

// onHardExit runs on a second interrupt, just before the process exits: the run command points it at
// Runner.Abandon, which writes what the run has.
var onHardExit atomic.Pointer[func()]

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs // the first: stop starting trials, let those in flight end, clean up
		if onHardExit.Load() != nil {
			fmt.Fprintln(os.Stderr, "stopping: letting the trials in flight finish, then cleaning up; "+
				"interrupt again (Ctrl-C) to exit at once")
		}
		cancel(fmt.Errorf("%v signal received", sig))
		<-sigs // the second: the user does not want to wait for that
		if f := onHardExit.Load(); f != nil {
			(*f)()
		}
		fmt.Fprintln(os.Stderr, "cvatbench: second interrupt: exiting now without cleaning up; "+
			"`cvatbench cleanup --older-than 0s` removes what this run created")
		os.Exit(exitHardInterrupt)
	}()
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	signal.Stop(sigs)
	os.Exit(code)
}

// buildInfo returns version and commit, falling back to the module's build
// information while the -ldflags values are still at their defaults.
func buildInfo() (ver, rev string) {
	ver, rev = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && rev == "none" {
				rev = s.Value
			}
		}
	}
	return ver, rev
}

// usageError marks an error as bad input (exit code 2).
func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), exitUsage)
}

// appAction runs when no subcommand matched. Without urfave's default (its help command), an unknown command
// would exit 3 ("No help topic"), a code our scheme reserves: here it is bad input, exit 2, on one line.
// Without arguments it shows the help and succeeds, as before.
func appAction(c *cli.Context) error {
	if !c.Args().Present() {
		return cli.ShowAppHelp(c)
	}
	names := make([]string, 0, len(c.App.Commands))
	for _, cmd := range c.App.Commands {
		if !cmd.Hidden && cmd.Name != "help" {
			names = append(names, cmd.Name)
		}
	}
	return usageError("unknown command %q (commands: %s; see cvatbench --help)", c.Args().First(), strings.Join(names, ", "))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ver, rev := buildInfo()
	app := &cli.App{
		Name:           "cvatbench",
		Usage:          "time CVAT task creation until job IDs are known, per wait strategy",
		Version:        fmt.Sprintf("%s (commit %s, built %s)", ver, rev, date),
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {}, // never os.Exit inside Run
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return cli.Exit(err.Error(), exitUsage)
		},
		Commands: commands(),
		Action:   appAction,
	}
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(stderr, "cvatbench:", msg)
	}
	if ec := cli.ExitCoder(nil); errors.As(err, &ec) {
		if ec.ExitCode() == urfaveNoHelpTopic { // `cvatbench help nonsense`: bad input, and 3 is not ours
			return exitUsage
		}
		return ec.ExitCode()
	}
	return exitRuntime
}
