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
	hp := p.params
	hp.SafetyPoll = 24 * time.Hour // the batch's own safety poll in WaitBatch covers every task
	w, err := NewWebhook(hp)
	if err != nil {
		return err
	}
	w.deliveriesOnly = true
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
func (p *ProjectWebhook) WaitBatch(ctx context.Context, api BatchAPI, clk Clock, projectID int, trials []Trial,
	done func(i int, out Outcome, err error)) {
	var once []sync.Once
	for range trials {
		once = append(once, sync.Once{})
	}
	finish := func(i int, out Outcome, err error) { once[i].Do(func() { done(i, out, err) }) }
	p.mu.Lock()
	_, ready := p.batches[projectID]
	p.mu.Unlock()
	var err error
	if !ready {
		err = p.PrepareBatch(ctx, projectID)
	}
	defer p.releaseBatch(ctx, projectID)
	if err != nil {
		for i := range trials {
			finish(i, Outcome{}, err)
		}
		return
	}
	p.mu.Lock()
	w := p.batches[projectID]
	p.mu.Unlock()
	cancels := make([]context.CancelFunc, len(trials))
	var wg sync.WaitGroup
	for i, t := range trials {
		tctx, cancel := context.WithCancel(ctx)
		cancels[i] = cancel
		wg.Go(func() {
			out, err := w.Wait(tctx, api, clk, t)
			if tctx.Err() != nil && ctx.Err() == nil {
				return // completed by the safety poll
			}
			finish(i, out, err)
		})
	}
	// The batch's safety poll: the whole project every period, until every task is done.
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	pending := map[int]int{}
	for i, t := range trials {
		pending[t.TaskID] = i
	}
	for {
		select {
		case <-allDone:
			return
		case <-ctx.Done():
			<-allDone
			return
		case <-clk.After(p.params.SafetyPoll):
		}
		byTask, err := projectJobIDs(ctx, api, projectID)
		if err != nil {
			continue
		}
		now := clk.Now()
		for taskID, ids := range byTask {
			if i, ok := pending[taskID]; ok {
				finish(i, Outcome{JobIDs: ids, SeenAt: now, Signal: SignalSafetyPoll}, nil)
				cancels[i]()
				delete(pending, taskID)
			}
		}
	}
}
