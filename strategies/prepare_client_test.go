package strategies_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

// miniCVAT answers the four calls of Prepare and Close on the wire, and sends the ping like CVAT: a signed
// POST to target_url inside the ping call, whose status it reports in the delivery.
type miniCVAT struct {
	mu      sync.Mutex
	body    map[string]any // the POST /api/webhooks body
	deleted []string
}

func (m *miniCVAT) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/vnd.cvat+json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/server/about":
		w.Write([]byte(`{"name":"Computer Vision Annotation Tool","version":"2.73.0"}`))
	case r.Method == http.MethodPost && r.URL.Path == "/api/webhooks":
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		m.mu.Lock()
		m.body = body
		m.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"id": hookID, "target_url": body["target_url"],
			"type": "project", "events": body["events"], "project_id": body["project_id"],
			"content_type": "application/json", "is_active": true, "enable_ssl": false})
	case r.Method == http.MethodPost && r.URL.Path == "/api/webhooks/7/ping":
		m.mu.Lock()
		target, _ := m.body["target_url"].(string)
		secret, _ := m.body["secret"].(string)
		m.mu.Unlock()
		payload, _ := json.Marshal(map[string]any{"event": "ping", "webhook": map[string]any{"id": hookID},
			"sender": map[string]any{"id": 1, "username": "admin1"}})
		status := postRaw(target, payload, sign(secret, payload))
		json.NewEncoder(w).Encode(map[string]any{"id": 1, "webhook_id": hookID, "event": "ping",
			"status_code": status, "redelivery": false, "attempt": 1})
	case r.Method == http.MethodDelete && r.URL.Path == "/api/webhooks/7":
		m.mu.Lock()
		m.deleted = append(m.deleted, r.URL.Path)
		m.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func TestWebhookPrepareWithClient(t *testing.T) {
	m := &miniCVAT{}
	srv := httptest.NewServer(m)
	defer srv.Close()
	c, err := cvat.New(cvat.Config{BaseURL: srv.URL, Auth: cvat.Token("k")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := strategies.New("webhook", strategies.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	p, ok := s.(strategies.Preparer)
	if !ok {
		t.Fatal("webhook is not a Preparer")
	}
	if err := p.Prepare(context.Background(), c, 9); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	body, _ := json.Marshal(m.body)
	for _, want := range []string{`"content_type":"application/json"`, `"enable_ssl":false`, `"project_id":9`,
		`"type":"project"`, `"events":["create:job","completed:request[create:task]"]`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("webhook body %s lacks %s", body, want)
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if len(m.deleted) != 1 {
		t.Errorf("deleted %v, want exactly webhook 7", m.deleted)
	}
}
