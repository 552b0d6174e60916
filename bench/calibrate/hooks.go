package calibrate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// hookReceiver records when each task's create:job deliveries arrive. CVAT's webhook worker sends a task's
// create:job events one after another right after the commit, so the gaps between arrivals are the service
// time of one delivery: the emulator's webhook_hop.
type hookReceiver struct {
	c       *cvat.Client
	srv     *http.Server
	hookID  int
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every arrival
	byTask  map[int][]time.Time
}

func startHookReceiver(ctx context.Context, c *cvat.Client, projectID int, network Network, publicURL, description string) (*hookReceiver, error) {
	ln, err := network.listen()
	if err != nil {
		return nil, err
	}
	h := &hookReceiver{c: c, changed: make(chan struct{}), byTask: map[int][]time.Time{}}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	active := true
	target := publicURL
	if target == "" {
		target = "http://" + ln.Addr().String() + "/"
	}
	hook, err := c.CreateWebhook(ctx, cvat.WebhookSpec{TargetURL: target, Description: description,
		Type: "project", ContentType: "application/json", ProjectID: &projectID, Events: []string{"create:job"}, IsActive: &active})
	if err != nil {
		_ = h.srv.Close()
		return nil, fmt.Errorf("create webhook: %w", err)
	}
	h.hookID = hook.ID
	return h, nil
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	var p struct {
		Event string `json:"event"`
		Job   struct {
			TaskID int `json:"task_id"`
		} `json:"job"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if json.Unmarshal(body, &p) == nil && p.Event == "create:job" && p.Job.TaskID > 0 {
		h.mu.Lock()
		h.byTask[p.Job.TaskID] = append(h.byTask[p.Job.TaskID], at)
		close(h.changed)
		h.changed = make(chan struct{})
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

// arrivals waits up to wait for n deliveries of taskID and returns those that came, in order.
func (h *hookReceiver) arrivals(taskID, n int, wait time.Duration) []time.Time {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		got, changed := slices.Clone(h.byTask[taskID]), h.changed
		h.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline.C:
			return got
		}
	}
}

func (h *hookReceiver) close(ctx context.Context) error {
	defer h.srv.Close()
	if err := h.c.DeleteWebhook(ctx, h.hookID); err != nil {
		return fmt.Errorf("delete webhook %d: %w", h.hookID, err)
	}
	return nil
}
