package cvat

import (
	"context"
	"time"
)

// Test seams, visible to package cvat_test only.

// SetSleep replaces how the client waits between retries.
func SetSleep(c *Client, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }

// SetNow replaces the client's clock (Retry-After dates, deadlines, Call.Start).
func SetNow(c *Client, f func() time.Time) { c.now = f }

// SetUploadLimits shrinks the Upload-Multiple batch limit and the TUS chunk size.
func SetUploadLimits(c *Client, batch, chunk int) { c.batchLimit, c.tusChunk = batch, chunk }

// EscapeSegment exposes the rq_id path escaping.
var EscapeSegment = escapeSegment
