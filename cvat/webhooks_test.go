package cvat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/cvat"
)

func TestWebhookEvents(t *testing.T) {
	tests := []struct {
		name, typ, body, wantQuery string
		want                       []string
	}{
		{"2.73 objects", "project",
			`{"webhook_type":"project","events":[{"key":"completed:request[create:task]","group":{"display_name":"Task data creation"}},{"key":"create:job","group":{"display_name":"Job"}}]}`,
			"type=project", []string{"completed:request[create:task]", "create:job"}},
		{"pre-2.73 strings", "organization", `["create:job","update:task"]`, "type=organization", []string{"create:job", "update:task"}},
		{"no type", "", `{"webhook_type":"all","events":[]}`, "", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/webhooks/events" || r.URL.RawQuery != tc.wantQuery {
					t.Errorf("got %s?%s", r.URL.Path, r.URL.RawQuery)
				}
				writeJSON(w, 200, tc.body)
			}), false, nil)
			got, err := c.WebhookEvents(context.Background(), tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("events (-want +got):\n%s", d)
			}
		})
	}
}

const webhookJSON = `{"id":%d,"url":"http://localhost:8080/api/webhooks/%[1]d","target_url":"http://webhooks.internal/","description":"","type":"project","content_type":"application/json","is_active":true,"enable_ssl":false,"created_date":"2026-08-20T10:00:00.000000Z","updated_date":"2026-08-20T10:00:00.000000Z","owner":{"url":"http://localhost:8080/api/users/1","id":1,"username":"admin1","first_name":"","last_name":""},"project_id":9,"organization":null,"events":["create:job"]}`

const deliveryJSON = `{"id":%d,"webhook_id":3,"event":"ping","status_code":200,"redelivery":false,"attempt":1,"request_duration":12,"created_date":"2026-08-20T10:00:00.000000Z","updated_date":"2026-08-20T10:00:00.000000Z","changed_fields":"","request":{},"response":"ok"}`

func TestWebhookCalls(t *testing.T) {
	const secret = "whsec-XYZ"
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/webhooks", func(w http.ResponseWriter, r *http.Request) {
		var spec map[string]any
		_ = json.NewDecoder(r.Body).Decode(&spec)
		if spec["secret"] != secret || spec["project_id"] != 9.0 || spec["type"] != "project" {
			writeJSON(w, 400, `{"secret":["Ensure this field has no more than 64 characters."]}`)
			return
		}
		writeJSON(w, 201, fmt.Sprintf(webhookJSON, 3))
	})
	mux.HandleFunc("GET /api/webhooks/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, fmt.Sprintf(webhookJSON, 3))
	})
	mux.HandleFunc("DELETE /api/webhooks/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	mux.HandleFunc("POST /api/webhooks/{id}/ping", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, fmt.Sprintf(deliveryJSON, 1))
	})
	mux.HandleFunc("GET /api/webhooks/{id}/deliveries", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "2" {
			writeJSON(w, 200, `{"count":2,"next":null,"previous":null,"results":[`+fmt.Sprintf(deliveryJSON, 1)+`]}`)
			return
		}
		next := "http://" + r.Host + "/api/webhooks/3/deliveries?page=2&page_size=1"
		writeJSON(w, 200, `{"count":2,"next":"`+next+`","previous":null,"results":[`+fmt.Sprintf(deliveryJSON, 2)+`]}`)
	})
	var log callLog
	c, _ := newClient(t, mux, true, func(cfg *cvat.Config) { cfg.OnCall = log.add })
	ctx := context.Background()
	pid := 9

	hook, err := c.CreateWebhook(ctx, cvat.WebhookSpec{TargetURL: "http://webhooks.internal/", Type: "project",
		ProjectID: &pid, Secret: secret, Events: []string{"create:job"}})
	if err != nil || hook.ID != 3 || hook.ProjectID == nil || *hook.ProjectID != 9 {
		t.Fatalf("create = %+v, %v", hook, err)
	}
	if _, err := c.CreateWebhook(ctx, cvat.WebhookSpec{TargetURL: "http://webhooks.internal/", Type: "project", ProjectID: &pid, Secret: "other", Events: []string{}}); err == nil ||
		strings.Contains(err.Error(), "other") || !strings.Contains(err.Error(), "secret: Ensure") {
		t.Errorf("bad create: %v", err)
	}
	if got, err := c.GetWebhook(ctx, 3); err != nil || got.TargetURL != "http://webhooks.internal/" {
		t.Errorf("get = %+v, %v", got, err)
	}
	d, err := c.PingWebhook(ctx, 3)
	if err != nil || d.StatusCode == nil || *d.StatusCode != 200 || d.Event != "ping" {
		t.Errorf("ping = %+v, %v", d, err)
	}
	ds, err := c.ListDeliveries(ctx, 3)
	if err != nil || len(ds) != 2 || ds[0].ID != 2 || ds[1].ID != 1 {
		t.Errorf("deliveries = %+v, %v", ds, err)
	}
	if err := c.DeleteWebhook(ctx, 3); err != nil {
		t.Error(err)
	}
	var ends []string
	for _, call := range log.all() {
		ends = append(ends, fmt.Sprintf("%s %s %d", call.Method, call.Endpoint, call.Status))
	}
	want := []string{"POST /api/webhooks 201", "POST /api/webhooks 400", "GET /api/webhooks/{id} 200",
		"POST /api/webhooks/{id}/ping 200", "GET /api/webhooks/{id}/deliveries 200", "GET /api/webhooks/{id}/deliveries 200",
		"DELETE /api/webhooks/{id} 204"}
	if d := cmp.Diff(want, ends); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
}
