package cvat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

const webhooksPath = "/api/webhooks"

// CreateWebhook creates a project or organization webhook. spec.Secret is sent once and never returned.
func (c *Client) CreateWebhook(ctx context.Context, spec WebhookSpec) (Webhook, error) {
	var w Webhook
	r := request{method: http.MethodPost, endpoint: webhooksPath, path: webhooksPath, want: http.StatusCreated}
	if err := c.sendJSON(ctx, r, spec, &w); err != nil {
		return Webhook{}, fmt.Errorf("create webhook: %w", err)
	}
	return w, nil
}

// GetWebhook reads one webhook.
func (c *Client) GetWebhook(ctx context.Context, id int) (Webhook, error) {
	var w Webhook
	if err := c.getJSON(ctx, webhookRequest(id, ""), &w); err != nil {
		return Webhook{}, fmt.Errorf("webhook %d: %w", id, err)
	}
	return w, nil
}

// DeleteWebhook deletes a webhook (204).
func (c *Client) DeleteWebhook(ctx context.Context, id int) error {
	r := webhookRequest(id, "")
	r.method, r.want = http.MethodDelete, http.StatusNoContent
	if _, err := c.do(ctx, r); err != nil {
		return fmt.Errorf("delete webhook %d: %w", id, err)
	}
	return nil
}

// ListWebhooks returns every webhook visible in the client's organization context.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	ws, err := listAll[Webhook](ctx, c, request{endpoint: webhooksPath, path: webhooksPath})
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return ws, nil
}

// WebhookEvents lists the event keys a webhook type ("project", "organization", "all"; "" = server default)
// accepts. It understands the 2.73 form {"webhook_type", "events": [{"key", "group"}]} and the list of
// strings of older servers; a server without "completed:request[create:task]" is older than 2.73.
func (c *Client) WebhookEvents(ctx context.Context, webhookType string) ([]string, error) {
	var v url.Values
	if webhookType != "" {
		v = url.Values{"type": {webhookType}}
	}
	var raw json.RawMessage
	r := request{endpoint: webhooksPath + "/events", path: webhooksPath + "/events", query: v}
	if err := c.getJSON(ctx, r, &raw); err != nil {
		return nil, fmt.Errorf("webhook events: %w", err)
	}
	events, err := decodeEvents(raw)
	if err != nil {
		return nil, fmt.Errorf("webhook events: %w", err)
	}
	return events, nil
}

func decodeEvents(raw []byte) ([]string, error) {
	if b := bytes.TrimSpace(raw); len(b) > 0 && b[0] == '[' {
		var keys []string
		err := json.Unmarshal(b, &keys)
		return keys, err
	}
	var obj struct {
		Events []struct {
			Key string `json:"key"`
		} `json:"events"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	keys := make([]string, len(obj.Events))
	for i, e := range obj.Events {
		keys[i] = e.Key
	}
	return keys, nil
}

// PingWebhook sends the ping event synchronously. It answers 200 even when the receiver failed: check
// WebhookDelivery.StatusCode (API.md §8.1).
func (c *Client) PingWebhook(ctx context.Context, id int) (WebhookDelivery, error) {
	r := webhookRequest(id, "/ping")
	r.method, r.want = http.MethodPost, http.StatusOK
	var d WebhookDelivery
	if err := c.decode(ctx, r, &d); err != nil {
		return WebhookDelivery{}, fmt.Errorf("ping webhook %d: %w", id, err)
	}
	return d, nil
}

// ListDeliveries returns every delivery of a webhook, newest first (the server's order).
func (c *Client) ListDeliveries(ctx context.Context, webhookID int) ([]WebhookDelivery, error) {
	ds, err := listAll[WebhookDelivery](ctx, c, webhookRequest(webhookID, "/deliveries"))
	if err != nil {
		return nil, fmt.Errorf("deliveries of webhook %d: %w", webhookID, err)
	}
	return ds, nil
}

func webhookRequest(id int, sub string) request {
	return request{method: http.MethodGet, endpoint: webhooksPath + "/{id}" + sub, path: webhooksPath + "/" + itoa(id) + sub}
}
