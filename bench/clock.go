package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
)

// Clock-offset methods recorded in meta.json.
const (
	// OffsetByPing: NTP-style exchange with CVAT's webhook ping (see PingOffset).
	OffsetByPing = "webhook ping: offset in [created - request_duration - 1ms - received, created - responded], intersected over pings"
	// OffsetByUpload: per trial, the request's created_date inside the upload call (record.EstimateOffset).
	OffsetByUpload = record.OffsetMethod
)

// ClockEstimate is one estimate of the server clock minus the local clock, valid within ±Bound.
type ClockEstimate struct {
	Offset  time.Duration
	Bound   time.Duration
	Method  string
	Samples int // exchanges that went into it
	// Consistent is false when the exchanges' intervals did not all overlap (a server stamp outside the window
	// it should be in): the estimate then is the narrowest single exchange, and Bound is its own.
	Consistent bool
}

// Pinger is what PingOffset needs of a CVAT client.
type Pinger interface {
	CreateWebhook(ctx context.Context, spec cvat.WebhookSpec) (cvat.Webhook, error)
	PingWebhook(ctx context.Context, id int) (cvat.WebhookDelivery, error)
	DeleteWebhook(ctx context.Context, id int) error
}

// pingReceiver answers CVAT's ping deliveries and records, per delivery, when it arrived and when the answer
// was about to be written (local clock).
type pingReceiver struct {
	mu    sync.Mutex
	stamp []([2]time.Time)
	now   func() time.Time
}

func (p *pingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := p.now()
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	p.mu.Lock()
	p.stamp = append(p.stamp, [2]time.Time{arrived, p.now()})
	p.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// take returns and forgets the recorded exchanges.
func (p *pingReceiver) take() [][2]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.stamp
	p.stamp = nil
	return out
}

// PingOffset estimates the clock offset from n webhook pings. CVAT 2.73 sends a ping synchronously inside
// POST /api/webhooks/{id}/ping (cvat/apps/webhooks/services.py send_webhook): it starts a perf_counter,
// posts to the target, stores the elapsed milliseconds, truncated, as request_duration and creates the
// delivery row, whose created_date is stamped right after. So on the server clock the post went out at or
// after created − request_duration − 1 ms and its answer came back at or before created; the receiver saw it
// between arrived and responded on the local clock, which gives, per ping, offset ∈ [created −
// request_duration − 1 ms − arrived, created − responded]. The intervals of all pings are intersected. On one
// host a ping takes a few milliseconds, so the bound is about a millisecond; a stamped API call (created_date
// of a task or request) cannot do better than the tens of milliseconds between the stamp and the answer.
//
// It serves ln (a listener the server can reach; on 127.0.0.1 when the server is on this host) until it
// returns, creates a project webhook that delivers nothing but pings on projectID, and deletes it before
// returning. publicURL, when set, is the URL the server posts to instead of the listener's address.
func PingOffset(ctx context.Context, c Pinger, projectID int, ln net.Listener, publicURL, description string, n int, now func() time.Time) (ClockEstimate, error) {
	if n < 1 {
		return ClockEstimate{}, errors.New("ping offset: need at least one ping")
	}
	if now == nil {
		now = time.Now
	}
	rec := &pingReceiver{now: now}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	target := publicURL
	if target == "" {
		target = "http://" + ln.Addr().String() + "/"
	}
	active := true
	hook, err := c.CreateWebhook(ctx, cvat.WebhookSpec{TargetURL: target, Description: description, Type: "project",
		ContentType: "application/json", ProjectID: &projectID, Events: []string{"update:project"}, IsActive: &active})
	if err != nil {
		return ClockEstimate{}, fmt.Errorf("ping offset: create webhook: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = c.DeleteWebhook(dctx, hook.ID)
	}()
	var exchanges []pingExchange
	for range n {
		rec.take()
		d, err := c.PingWebhook(ctx, hook.ID)
		if err != nil {
			return ClockEstimate{}, fmt.Errorf("ping offset: %w", err)
		}
		seen := rec.take()
		if d.StatusCode == nil || *d.StatusCode != http.StatusOK || len(seen) != 1 || d.RequestDuration == nil || d.CreatedDate.IsZero() {
			status := 0
			if d.StatusCode != nil {
				status = *d.StatusCode
			}
			return ClockEstimate{}, fmt.Errorf("ping offset: the server could not deliver a ping to %s (status %d, %d received); a server that refuses private addresses (smokescreen) needs a reachable webhook URL", target, status, len(seen))
		}
		exchanges = append(exchanges, pingExchange{created: d.CreatedDate, duration: time.Duration(*d.RequestDuration) * time.Millisecond,
			arrived: seen[0][0], responded: seen[0][1]})
	}
	return intersectPings(exchanges), nil
}

// pingExchange is one ping: the delivery's created_date and request_duration (server), and the receiver's
// arrival and response times (local).
type pingExchange struct {
	created, arrived, responded time.Time
	duration                    time.Duration
}

// interval is the offset interval one exchange allows (see PingOffset).
func (e pingExchange) interval() (lo, hi time.Duration) {
	return e.created.Add(-e.duration - time.Millisecond).Sub(e.arrived), e.created.Sub(e.responded)
}

// intersectPings intersects the exchanges' intervals; if they do not all overlap it falls back on the
// narrowest one.
func intersectPings(ex []pingExchange) ClockEstimate {
	lo, hi := ex[0].interval()
	for _, e := range ex[1:] {
		l, h := e.interval()
		lo, hi = max(lo, l), min(hi, h)
	}
	est := ClockEstimate{Method: OffsetByPing, Samples: len(ex), Consistent: lo <= hi}
	if !est.Consistent {
		sort.Slice(ex, func(i, j int) bool {
			li, hi := ex[i].interval()
			lj, hj := ex[j].interval()
			return hi-li < hj-lj
		})
		lo, hi = ex[0].interval()
	}
	est.Offset, est.Bound = (lo+hi)/2, (hi-lo)/2
	return est
}
