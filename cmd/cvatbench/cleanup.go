package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/cvat"
)

// cleanupCommand deletes what killed or failed runs left on a real server. It needs --url: the embedded
// emulator's objects vanish with the process.
func cleanupCommand() *cli.Command {
	return &cli.Command{
		Name:  "cleanup",
		Usage: "delete tasks, projects and webhooks that earlier runs left on a CVAT server",
		Description: "Lists the objects of the authenticated user whose name starts with " + bench.CleanupPrefix +
			"<run id>, older than --older-than, then asks before deleting them by id. Objects of other users and " +
			"names without a run id are never touched.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Usage: "CVAT base URL (required)"},
			&cli.StringFlag{Name: "user", EnvVars: []string{"CVAT_USER"}, Usage: "CVAT user (logs in for a token)"},
			&cli.StringFlag{Name: "password", EnvVars: []string{"CVAT_PASSWORD"}, Usage: "CVAT password (never printed)"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"CVAT_ACCESS_TOKEN"}, Usage: "CVAT personal access token (never printed)"},
			&cli.StringFlag{Name: "org", Usage: "organization slug; empty: personal sandbox"},
			&cli.DurationFlag{Name: "older-than", Value: bench.CleanupDefaultAge, Usage: "only objects created at least this long ago"},
			&cli.BoolFlag{Name: "dry-run", Usage: "list the leftovers, delete nothing"},
			&cli.BoolFlag{Name: "yes", Usage: "delete without asking"},
		},
		Action: cleanupAction,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError("cleanup: %v", err)
		},
	}
}

// cleanupCheckFlags reports every bad flag at once, on one line. Values that may hold secrets are never echoed.
func cleanupCheckFlags(c *cli.Context) error {
	var problems []string
	if c.Args().Present() {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q: flags go first", c.Args().Slice()))
	}
	if p := cleanupCheckURL(c.String("url")); p != "" {
		problems = append(problems, p)
	}
	if d := c.Duration("older-than"); d < 0 {
		problems = append(problems, fmt.Sprintf("--older-than must not be negative, got %v", d))
	}
	if c.Bool("dry-run") && c.Bool("yes") {
		problems = append(problems, "--dry-run and --yes contradict each other")
	}
	user, password, token := c.String("user"), c.String("password"), c.String("token")
	switch {
	case token != "" && (user != "" || password != ""):
		problems = append(problems, "give --token (CVAT_ACCESS_TOKEN) or --user/--password (CVAT_USER/CVAT_PASSWORD), not both")
	case user != "" && password == "":
		problems = append(problems, "--user needs --password (or CVAT_PASSWORD)")
	case password != "" && user == "":
		problems = append(problems, "--password needs --user (or CVAT_USER)")
	case token == "" && user == "":
		problems = append(problems, "no credentials: give --token or --user and --password (or CVAT_ACCESS_TOKEN, CVAT_USER, CVAT_PASSWORD)")
	}
	if len(problems) > 0 {
		return usageError("cleanup: %s", strings.Join(problems, "; "))
	}
	return nil
}

// cleanupCheckURL returns what is wrong with --url, or "". Unlike run, cleanup has no emulator to fall back on.
func cleanupCheckURL(raw string) string {
	if raw == "" {
		return "--url is required (the embedded emulator's objects vanish with it, there is nothing to clean up)"
	}
	return checkServerURL(raw)
}

func cleanupAction(c *cli.Context) error {
	if err := cleanupCheckFlags(c); err != nil {
		return err
	}
	ctx, stderr := c.Context, c.App.ErrWriter
	client, err := cleanupClient(c)
	if err != nil {
		return err
	}
	olderThan := c.Duration("older-than")
	leftovers, err := bench.FindLeftovers(ctx, client, olderThan, time.Now())
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	if len(leftovers) == 0 {
		fmt.Fprintf(stderr, "no leftovers older than %v\n", olderThan)
		return nil
	}
	if err := cleanupPrint(c.App.Writer, leftovers); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	n := len(leftovers)
	if c.Bool("dry-run") {
		fmt.Fprintf(stderr, "dry run: %d %s left in place\n", n, cleanupObjects(n))
		return nil
	}
	if !c.Bool("yes") {
		ok, err := cleanupConfirm(c.App.Reader, stderr, n)
		if err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		if !ok {
			fmt.Fprintln(stderr, "nothing deleted")
			return nil
		}
	}
	errs := bench.DeleteLeftovers(ctx, client, leftovers)
	for _, e := range errs {
		fmt.Fprintln(stderr, "cleanup:", e)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cleanup: %d of %d deletions failed", len(errs), n)
	}
	fmt.Fprintf(stderr, "deleted %d %s\n", n, cleanupObjects(n))
	return nil
}

// cleanupClient authenticates with the personal access token, or logs in for a token key: Basic auth is
// avoided because CVAT hashes the password on every request (API.md §2.1).
func cleanupClient(c *cli.Context) (*cvat.Client, error) {
	base, token := c.String("url"), c.String("token")
	auth := cvat.Bearer(token)
	if token == "" {
		key, err := cvat.Login(c.Context, base, c.String("user"), c.String("password"), nil)
		if err != nil {
			return nil, fmt.Errorf("cleanup: log in: %w", err)
		}
		auth = cvat.Token(key)
	}
	client, err := cvat.New(cvat.Config{BaseURL: base, Auth: auth, Org: c.String("org")})
	if err != nil {
		return nil, usageError("cleanup: %v", err)
	}
	return client, nil
}

// cleanupPrint writes one aligned line per leftover, under a header.
func cleanupPrint(w io.Writer, leftovers []bench.Leftover) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "kind\tid\tname\tcreated_at")
	for _, l := range leftovers {
		created := "-"
		if !l.Created.IsZero() {
			created = l.Created.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", l.Kind, l.ID, cleanupPrintable(l.Name), created)
	}
	return tw.Flush()
}

// cleanupPrintable quotes a name that holds control or invisible characters: the part after the run id is
// whatever the server stored, and must not drive the terminal or break the columns.
func cleanupPrintable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || r == '\t' }) >= 0 {
		return strconv.QuoteToGraphic(s)
	}
	return s
}

// cleanupConfirm asks on w and reads one answer from r: "y" or "yes" (any case) agrees, anything else declines.
// An input that ends before any answer is an error, so a script without --yes and without a terminal fails
// loudly instead of reporting success.
func cleanupConfirm(r io.Reader, w io.Writer, n int) (bool, error) {
	if r == nil {
		r = os.Stdin
	}
	fmt.Fprintf(w, "Delete %d %s? [y/N] ", n, cleanupObjects(n))
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		fmt.Fprintln(w)
		if errors.Is(err, io.EOF) {
			return false, errors.New("no answer on stdin, nothing deleted (use --yes to delete without asking)")
		}
		return false, fmt.Errorf("read answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

func cleanupObjects(n int) string {
	if n == 1 {
		return "object"
	}
	return "objects"
}
