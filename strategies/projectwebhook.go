package strategies

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// ProjectWebhook waits for a batch with one project webhook: for each batch it starts a receiver and creates
// a webhook on the batch's project (the create, the ping and the delete are the batch's requests), and
// completes each task from its deliveries alone: N create:job and the update:task that says jobs.count N
// (API.md §8.4), no call per task. A listing of the whole project every safety period covers lost
// deliveries; completed:request[create:task] with status failed ends a failed task.
type ProjectWebhook struct {
	params Params

	mu      sync.Mutex
	client  *cvat.Client
	batches map[int]*Webhook // batch project id -> its webhook, from PrepareBatch to the end of WaitBatch
}

// NewProjectWebhook returns the project-webhook strategy from the webhook parameters of p.
func NewProjectWebhook(p Params) (*ProjectWebhook, error) {
	if _, err := NewWebhook(p); err != nil {
		return nil, err
	}
	return &ProjectWebhook{params: p}, nil
}

// Name returns "project-webhook".
func (*ProjectWebhook) Name() string { return "project-webhook" }

// Prepare keeps the client for the batches' webhooks; the run's project gets none.
func (p *ProjectWebhook) Prepare(_ context.Context, c *cvat.Client, _ int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.client = c
	return nil
}

// Close removes the webhooks of batches still open (an interrupted run).
func (p *ProjectWebhook) Close(ctx context.Context) error {
	p.mu.Lock()
	var ids []int
	for id := range p.batches {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	for _, id := range ids {
		p.releaseBatch(ctx, id)
	}
	return nil
}

// Wait is a batch of one.
func (p *ProjectWebhook) Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error) {
	return waitOne(ctx, p, api, clk, t)
}

// PrepareBatch starts the batch's receiver and creates its webhook on the batch's project, before the
// batch's tasks exist: their deliveries start at their commits.
func (p *ProjectWebhook) PrepareBatch(ctx context.Context, projectID int) error {
	p.mu.Lock()
	client := p.client
	p.mu.Unlock()
	if client == nil {
		return errors.New("project-webhook strategy not prepared")
	}
	w, err := NewWebhook(p.params)
	if err != nil {
		return err
	}
	w.deliveriesOnly = true // no per-task safety poll either: WaitBatch's covers every task
	if err := w.Prepare(ctx, client, projectID); err != nil {
		return err
	}
	p.mu.Lock()
	if p.batches == nil {
		p.batches = map[int]*Webhook{}
	}
	p.batches[projectID] = w
	p.mu.Unlock()
	return nil
}

// releaseBatch removes the batch's webhook and stops its receiver.
func (p *ProjectWebhook) releaseBatch(ctx context.Context, projectID int) {
	p.mu.Lock()
	w := p.batches[projectID]
	delete(p.batches, projectID)
	p.mu.Unlock()
	if w == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = w.Close(cctx) // removes only the webhook it created; a failure leaves it to cleanup's leftovers
}

// WaitBatch waits for every trial on the deliveries to the batch's webhook (PrepareBatch; made now if the
// caller did not), then removes the webhook.
func (p *ProjectWebhook) WaitBatch(ctx context.Context, api BatchAPI, clk Clock, projectID int, trials <-chan IndexedTrial,
	done func(i int, out Outcome, err error)) {
	var mu sync.Mutex
	finished := map[int]bool{}
	finish := func(i int, out Outcome, err error) {
		mu.Lock()
		first := !finished[i]
		finished[i] = true
		mu.Unlock()
		if first {
			done(i, out, err)
		}
	}
	p.mu.Lock()
	_, ready := p.batches[projectID]
	p.mu.Unlock()
	var err error
	if !ready {
		err = p.PrepareBatch(ctx, projectID)
	}
	defer p.releaseBatch(ctx, projectID)
	if err != nil {
		drainFailing(ctx, trials, finish, err)
		return
	}
	p.mu.Lock()
	w := p.batches[projectID]
	p.mu.Unlock()

	pending := map[int]int{} // task id -> index, of trials sent and not done
	cancels := map[int]context.CancelFunc{}
	var wg sync.WaitGroup
	start := func(t IndexedTrial) {
		tctx, cancel := context.WithCancel(ctx)
		mu.Lock()
		pending[t.TaskID], cancels[t.Index] = t.Index, cancel
		mu.Unlock()
		wg.Go(func() {
			defer cancel()
			out, err := w.Wait(tctx, api, clk, t.Trial)
			if tctx.Err() != nil && ctx.Err() == nil {
				return // completed by the safety poll
			}
			mu.Lock()
			delete(pending, t.TaskID)
			mu.Unlock()
			finish(t.Index, out, err)
		})
	}
	safety := clk.After(p.params.SafetyPoll)
	for open := true; open; {
		select {
		case t, ok := <-trials:
			if !ok {
				open = false
				break
			}
			start(t)
		case <-safety:
			p.safetyPoll(ctx, api, clk, projectID, &mu, pending, cancels, finish)
			safety = clk.After(p.params.SafetyPoll)
		case <-ctx.Done():
			open = false
		}
	}
	// Every trial is sent: poll until the waits are over.
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	for {
		select {
		case <-allDone:
			return
		case <-ctx.Done():
			<-allDone
			return
		case <-safety:
			p.safetyPoll(ctx, api, clk, projectID, &mu, pending, cancels, finish)
			safety = clk.After(p.params.SafetyPoll)
		}
	}
}

// safetyPoll lists the whole project once and completes every pending trial it shows jobs of, covering lost
// deliveries.
func (p *ProjectWebhook) safetyPoll(ctx context.Context, api BatchAPI, clk Clock, projectID int, mu *sync.Mutex,
	pending map[int]int, cancels map[int]context.CancelFunc, finish func(int, Outcome, error)) {
	byTask, err := projectJobIDs(ctx, api, projectID)
	if err != nil {
		return // the next period, or a delivery, follows
	}
	now := clk.Now()
	type hit struct {
		index  int
		ids    []int
		cancel context.CancelFunc
	}
	var hits []hit
	mu.Lock()
	for taskID, ids := range byTask {
		if i, ok := pending[taskID]; ok {
			delete(pending, taskID)
			hits = append(hits, hit{i, ids, cancels[i]})
		}
	}
	mu.Unlock()
	for _, h := range hits {
		finish(h.index, Outcome{JobIDs: h.ids, SeenAt: now, Signal: SignalSafetyPoll}, nil)
		h.cancel()
	}
}
