package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// commands lists the subcommands; each lives in its own file.
func commands() []*cli.Command {
	return []*cli.Command{
		runCommand(),
		calibrateCommand(),
		simCommand(),
		cleanupCommand(),
		reportCommand(),
		compareCommand(),
		versionCommand(),
	}
}

// versionCommand prints what --version prints, for the habit of `tool version`.
func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, commit and build date",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageError("version: takes no arguments")
			}
			_, err := fmt.Fprintf(c.App.Writer, "cvatbench version %s\n", c.App.Version)
			return err
		},
	}
}
