package bench

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// CleanupPrefix starts the name of every task and project, and the description of every webhook, that
// cvatbench creates on a server: "cvatbench-<run id>-<strategy>[-<seq>]". Leftover finding relies on it to
// tell cvatbench's objects from everything else on a shared server.
const CleanupPrefix = "cvatbench-"

// CleanupDefaultAge is the default minimum age of a leftover: older than any sane trial timeout, so a run in
// progress on the same server keeps its objects.
const CleanupDefaultAge = time.Hour

// Kinds of Leftover, in the order DeleteLeftovers deletes them: a webhook first, so its project's deletion
// cannot race a delivery, and a project last, because deleting it cascades to tasks.
const (
	LeftoverWebhook = "webhook"
	LeftoverTask    = "task"
	LeftoverProject = "project"
)

// leftoverKindOrder ranks kinds for sorting and deletion.
var leftoverKindOrder = map[string]int{LeftoverWebhook: 0, LeftoverTask: 1, LeftoverProject: 2}

// leftoverRunIDLayout is the timestamp half of a run id (see NewRunID).
const leftoverRunIDLayout = "20060102T150405Z"

// leftoverName matches a cvatbench name strictly: the prefix at the very start, then a run id, then the end
// or a "-" that starts the strategy. "cvatbench" alone, "my-cvatbench-x" or a run id glued to more hex
// digits or letters do not match.
var leftoverName = regexp.MustCompile(`^cvatbench-([0-9]{8}T[0-9]{6}Z-[0-9a-f]{4,})(?:-|$)`)

// Leftover is an object on a CVAT server that an earlier cvatbench run created and did not delete (the run
// was killed, or its cleanup failed).
type Leftover struct {
	Kind    string    // LeftoverTask, LeftoverProject or LeftoverWebhook
	ID      int       // server id: deletion goes by id only, never by name
	Name    string    // task or project name, webhook description
	RunID   string    // the run that created it, parsed from Name
	Created time.Time // server's created_date
}

// LeftoverRunID returns the run id a cvatbench object name carries ("cvatbench-20261127T001500Z-3f9a-poll-3"
// gives "20261127T001500Z-3f9a"), and false for any name cvatbench did not make. The timestamp must be a
// real UTC date, so that a name that only looks similar is not taken for ours.
func LeftoverRunID(name string) (string, bool) {
	m := leftoverName.FindStringSubmatch(name)
	if m == nil {
		return "", false
	}
	if _, ok := leftoverRunTime(m[1]); !ok {
		return "", false
	}
	return m[1], true
}

// leftoverRunTime is the local start time encoded in a run id.
func leftoverRunTime(runID string) (time.Time, bool) {
	if len(runID) < len(leftoverRunIDLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(leftoverRunIDLayout, runID[:len(leftoverRunIDLayout)])
	return t, err == nil
}

// FindLeftovers lists what earlier runs left on the server and is older than olderThan at now: tasks and
// projects whose name parses with LeftoverRunID and that the authenticated user owns, and webhooks whose
// description parses and that hang on such a project of the same run (cvatbench creates project webhooks
// only). The server's search is a substring match on name or owner, so every object is filtered again here.
//
// An object counts as old only when both its created_date (server clock) and its run id (clock of the
// machine that ran it) are before the cutoff: a server clock running behind cannot make a run in progress
// look old. The result is sorted in deletion order (webhooks, tasks, projects), then by id.
func FindLeftovers(ctx context.Context, c *cvat.Client, olderThan time.Duration, now time.Time) ([]Leftover, error) {
	if c == nil {
		return nil, errors.New("find leftovers: nil client")
	}
	if olderThan < 0 {
		return nil, fmt.Errorf("find leftovers: negative age %v", olderThan)
	}
	self, err := c.Self(ctx)
	if err != nil {
		return nil, fmt.Errorf("find leftovers: who am i: %w", err)
	}
	cutoff := now.Add(-olderThan)
	old := func(created time.Time, runID string) bool {
		rt, _ := leftoverRunTime(runID) // runID came from LeftoverRunID, so it parses
		return created.Before(cutoff) && rt.Before(cutoff)
	}
	mine := func(owner *cvat.BasicUser) bool { return owner != nil && owner.ID == self.ID }

	var out []Leftover
	projects, err := c.ListProjects(ctx, CleanupPrefix)
	if err != nil {
		return nil, fmt.Errorf("find leftovers: %w", err)
	}
	ownProjects := map[int]string{} // id -> run id, whatever the age: webhooks are matched against it
	for _, p := range projects {
		runID, ok := LeftoverRunID(p.Name)
		if !ok || !mine(p.Owner) {
			continue
		}
		ownProjects[p.ID] = runID
		if old(p.CreatedDate, runID) {
			out = append(out, Leftover{Kind: LeftoverProject, ID: p.ID, Name: p.Name, RunID: runID, Created: p.CreatedDate})
		}
	}

	tasks, err := c.ListTasks(ctx, CleanupPrefix)
	if err != nil {
		return nil, fmt.Errorf("find leftovers: %w", err)
	}
	for _, t := range tasks {
		runID, ok := LeftoverRunID(t.Name)
		if ok && mine(t.Owner) && old(t.CreatedDate, runID) {
			out = append(out, Leftover{Kind: LeftoverTask, ID: t.ID, Name: t.Name, RunID: runID, Created: t.CreatedDate})
		}
	}

	webhooks, err := c.ListWebhooks(ctx)
	if err != nil {
		return nil, fmt.Errorf("find leftovers: %w", err)
	}
	for _, w := range webhooks {
		runID, ok := LeftoverRunID(w.Description)
		// The webhook has no owner in our wire type: its project vouches for it.
		if !ok || w.ProjectID == nil || ownProjects[*w.ProjectID] != runID || !old(w.CreatedDate, runID) {
			continue
		}
		out = append(out, Leftover{Kind: LeftoverWebhook, ID: w.ID, Name: w.Description, RunID: runID, Created: w.CreatedDate})
	}
	slices.SortFunc(out, func(a, b Leftover) int {
		if d := leftoverKindOrder[a.Kind] - leftoverKindOrder[b.Kind]; d != 0 {
			return d
		}
		return a.ID - b.ID
	})
	return out, nil
}

// DeleteLeftovers deletes the given objects by id, webhooks first, then tasks, then projects, and returns one
// error per object it could not delete (nil when all went). An object already gone (404) counts as deleted.
// It deletes nothing but what it is given: callers pass the result of FindLeftovers, maybe after asking.
func DeleteLeftovers(ctx context.Context, c *cvat.Client, leftovers []Leftover) []error {
	if c == nil {
		return []error{errors.New("delete leftovers: nil client")}
	}
	ordered := slices.Clone(leftovers)
	slices.SortStableFunc(ordered, func(a, b Leftover) int {
		return leftoverKindOrder[a.Kind] - leftoverKindOrder[b.Kind]
	})
	var errs []error
	for _, l := range ordered {
		var err error
		switch l.Kind {
		case LeftoverWebhook:
			err = c.DeleteWebhook(ctx, l.ID)
		case LeftoverTask:
			err = c.DeleteTask(ctx, l.ID)
		case LeftoverProject:
			err = c.DeleteProject(ctx, l.ID)
		default:
			err = fmt.Errorf("unknown kind %q", l.Kind)
		}
		if err != nil && !errors.Is(err, cvat.ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete %s %d (%s): %w", l.Kind, l.ID, l.Name, err))
		}
	}
	return errs
}
