package record

import "time"

// EstimateOffset estimates the server clock minus the local clock from one request's created_date, which the
// server stamps while answering the upload call that the client sent at sent (local) and whose 202 arrived at
// received (local). created_date must lie inside [sent, received] in server time, so the offset lies within
// ± half the call duration of created − midpoint. ok is false if the window is inverted or created is zero.
func EstimateOffset(created, sent, received time.Time) (offset, bound time.Duration, ok bool) {
	if created.IsZero() || sent.IsZero() || received.Before(sent) {
		return 0, 0, false
	}
	half := received.Sub(sent) / 2
	mid := sent.Add(half)
	return created.Sub(mid), half, true
}

// ToLocal maps a server-clock time to the local clock given offset = server − local.
func ToLocal(server time.Time, offset time.Duration) time.Time { return server.Add(-offset) }

// Derive fills the derived durations of rec from its timestamps. End-to-end latency counts from IntendedAt when
// set (open loop: a late start is the client's fault, not the server's, and still counts) and otherwise from
// CreateSentAt. Durations whose endpoints are missing stay nil.
func Derive(rec *Trial) {
	from := rec.CreateSentAt
	if rec.IntendedAt != nil {
		from = rec.IntendedAt
	}
	rec.EndToEndMs = between(from, rec.JobsObtainedAt)
	rec.ScheduleLagMs = between(rec.IntendedAt, rec.CreateSentAt)
	rec.DetectionDelayMs = between(rec.JobsVisibleAt, rec.JobsObtainedAt)
	rec.ServerQueueMs = between(rec.RequestCreatedAt, rec.RequestStartedAt)
	rec.ServerProcessingMs = between(rec.RequestStartedAt, rec.RequestFinishedAt)
}

func between(a, b *time.Time) *float64 {
	if a == nil || b == nil {
		return nil
	}
	v := ms(b.Sub(*a))
	return &v
}

// Stamp is t as the results format keeps a timestamp: UTC wall clock (no monotonic reading, so durations
// derived now equal those derived from the file later), nil for the zero time.
func Stamp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func floatPtr(v float64) *float64 { return &v }
