package strategies

import (
	"context"
	"net/http"
	"time"
)

// Test seams for package strategies_test.

// UIStep exposes the web UI's index and delay rule.
func UIStep(status string, index int, progress, previous float64, random func() float64) (int, time.Duration) {
	return uiStep(status, index, progress, previous, random)
}

// SetUIRand replaces the per-trial random source of u.
func SetUIRand(u *WebUI, f func(t Trial) func() float64) { u.newRand = f }

// AdaptivePlan exposes the poll offsets since the upload that a plans for a trial with images images before
// its first answer (the start unknown, nothing queued yet).
func AdaptivePlan(a *Adaptive, images int) []time.Duration {
	return adaptiveOffsets(a.model(images).plan(0, -1, 0))
}

// AdaptivePlanStarted exposes the plan of a trial whose request started `started` after the upload, made at
// `elapsed` after the upload.
func AdaptivePlanStarted(a *Adaptive, images int, started, elapsed time.Duration) []time.Duration {
	return adaptiveOffsets(a.model(images).plan(0, started.Seconds(), elapsed.Seconds()))
}

// AdaptivePlanQueued exposes the plan of a trial whose request was still queued `queuedFor` after the upload.
func AdaptivePlanQueued(a *Adaptive, images int, queuedFor time.Duration) []time.Duration {
	return adaptiveOffsets(a.model(images).plan(queuedFor.Seconds(), -1, queuedFor.Seconds()))
}

// AdaptiveSchedule exposes the dynamic programme of the adaptive schedule (times in seconds).
func AdaptiveSchedule(cdf func(float64) float64, a, hi, c float64) []float64 {
	return pollSchedule(cdf, a, hi, c)
}

func adaptiveOffsets(plan []float64) []time.Duration {
	out := make([]time.Duration, len(plan))
	for i, s := range plan {
		out[i] = fromSeconds(s)
	}
	return out
}

// HookClient is the fakeable part of *cvat.Client used by the webhook strategy.
type HookClient = hookClient

// PrepareWith runs the webhook Prepare with a fake client.
func PrepareWith(ctx context.Context, w *Webhook, c HookClient, projectID int) error {
	return w.prepare(ctx, c, projectID)
}

// HookReceiver arms w as a successful Prepare leaves it (secret, webhook id, empty task state) without a
// listener or a server, and returns the receiver's handler: the fuzz target drives the parsing and
// signature path directly.
func HookReceiver(w *Webhook, secret []byte, hookID int) http.Handler {
	w.mu.Lock()
	w.secret, w.hookID = secret, hookID
	w.tasks, w.done = map[int]*hookTask{}, map[int]bool{}
	w.mu.Unlock()
	return http.HandlerFunc(w.serveHook)
}

// HookPings returns how many authenticated pings the receiver of w accepted.
func HookPings(w *Webhook) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pings
}

// SpecKeysForTest returns, per strategy, whether it takes spec keys: the set of names specs know.
func SpecKeysForTest() map[string]bool {
	m := map[string]bool{}
	for name, keys := range specKeys {
		m[name] = len(keys) > 0
	}
	return m
}
