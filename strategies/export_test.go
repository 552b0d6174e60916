package strategies

import (
	"context"
	"time"
)

// Test seams for package strategies_test.

// UIStep exposes the web UI's index and delay rule.
func UIStep(status string, index int, progress, previous float64, random func() float64) (int, time.Duration) {
	return uiStep(status, index, progress, previous, random)
}

// SetUIRand replaces the per-trial random source of u.
func SetUIRand(u *WebUI, f func(t Trial) func() float64) { u.newRand = f }

// AdaptivePlan exposes the predicted poll offsets of a for a trial with images images.
func AdaptivePlan(a *Adaptive, images int) []time.Duration { return a.plan(images) }

// HookClient is the fakeable part of *cvat.Client used by the webhook strategy.
type HookClient = hookClient

// PrepareWith runs the webhook Prepare with a fake client.
func PrepareWith(ctx context.Context, w *Webhook, c HookClient, projectID int) error {
	return w.prepare(ctx, c, projectID)
}
