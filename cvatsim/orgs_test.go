package cvatsim_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"

	"github.com/cvatbench/cvatbench/cvatsim"
)

// TestOrganizations follows what a real CVAT 2.73.0 answered to the same sequence (measured): an
// organization and its owner's membership, creation and listing under X-Organization and org, the errors of
// the context, an organization task's request, jobs and webhooks, and the deletion of the organization.
func TestOrganizations(t *testing.T) {
	rec := newStatusRecorder()
	e := newEnv(t, cvatsim.Options{OnRequestStatus: rec.hook, Users: []cvatsim.UserSpec{{Username: "u2", Password: "pw2"}}})
	r := e.must(201, e.do("POST", "/api/organizations", mustJSON(map[string]any{"slug": "lab", "name": "the lab"}), nil))
	orgObj := r.obj(t)
	orgID := orgObj["id"]
	if orgObj["slug"] != "lab" || orgObj["name"] != "the lab" || orgObj["owner"].(map[string]any)["username"] != "admin" {
		t.Fatalf("organization %v", orgObj)
	}
	for _, tc := range []struct {
		body string
		want string
	}{
		{`{"slug":"lab"}`, `{"slug":["organization with this slug already exists."]}`},
		{`{"slug":"bad slug!"}`, `{"slug":["Enter a valid \"slug\" consisting of letters, numbers, underscores or hyphens."]}`},
		{`{"name":"x"}`, `{"slug":["This field is required."]}`},
	} {
		if r := e.must(400, e.do("POST", "/api/organizations", []byte(tc.body), nil)); string(r.body) != tc.want {
			t.Errorf("POST %s: %s, want %s", tc.body, r.body, tc.want)
		}
	}
	for _, path := range []string{"/api/memberships", "/api/memberships?org=lab"} {
		ms := e.must(200, e.do("GET", path, nil, nil)).obj(t)
		res := ms["results"].([]any)
		if len(res) != 1 || res[0].(map[string]any)["role"] != "owner" || res[0].(map[string]any)["organization"] != orgID {
			t.Errorf("GET %s: %v", path, ms)
		}
	}
	if n := e.must(200, e.do("GET", "/api/memberships?org=", nil, nil)).obj(t)["count"]; n != 0.0 {
		t.Errorf("sandbox memberships %v", n)
	}

	inOrg := map[string]string{"X-Organization": "lab"}
	pid := int(e.must(201, e.do("POST", "/api/projects", mustJSON(map[string]any{"name": "p", "labels": []any{map[string]any{"name": "a"}}}), inOrg)).obj(t)["id"].(float64))
	r = e.must(400, e.do("POST", "/api/tasks", mustJSON(map[string]any{"name": "t", "project_id": pid}), nil))
	if string(r.body) != `["The task and its project should be in the same organization."]` {
		t.Errorf("sandbox task in an organization project: %s", r.body)
	}
	task := e.must(201, e.do("POST", "/api/tasks", mustJSON(map[string]any{"name": "t", "project_id": pid}), inOrg)).obj(t)
	tid := int(task["id"].(float64))
	if task["organization"] != orgID || task["organization_id"] != orgID {
		t.Errorf("task organization %v / %v, want %v", task["organization"], task["organization_id"], orgID)
	}
	e.createTask(map[string]any{"name": "sandbox task"})

	for _, tc := range []struct {
		path   string
		hdr    map[string]string
		status int
		body   string
	}{
		{"/api/tasks", map[string]string{"X-Organization": "nosuch"}, 404, `{"detail":"nosuch organization does not exist."}`},
		{"/api/tasks?org=nosuch", nil, 404, `{"detail":"nosuch organization does not exist."}`},
		{"/api/tasks?org_id=99999", nil, 404, `{"detail":"99999 organization does not exist."}`},
		{fmt.Sprintf("/api/tasks?org=lab&org_id=%v", orgID), nil, 400,
			`["You cannot specify \"org_id\" query parameter with \"org\" query parameter or \"X-Organization\" HTTP header at the same time."]`},
		{"/api/tasks?org=", inOrg, 400, `["You cannot specify \"org\" query parameter and \"X-Organization\" HTTP header with different values."]`},
	} {
		if r := e.do("GET", tc.path, nil, tc.hdr); r.status != tc.status || string(r.body) != tc.body {
			t.Errorf("GET %s %v: %d %s, want %d %s", tc.path, tc.hdr, r.status, r.body, tc.status, tc.body)
		}
	}
	count := func(path string, hdr map[string]string) any {
		return e.must(200, e.do("GET", path, nil, hdr)).obj(t)["count"]
	}
	for path, want := range map[string]float64{"/api/tasks": 2, "/api/tasks?org=": 1, "/api/tasks?org=lab": 1,
		fmt.Sprintf("/api/tasks?org_id=%v", orgID): 1, "/api/projects?org=": 0, "/api/projects?org=lab": 1} {
		if got := count(path, nil); got != want {
			t.Errorf("GET %s: count %v, want %v", path, got, want)
		}
	}
	if got := count("/api/tasks", inOrg); got != 1.0 {
		t.Errorf("tasks under X-Organization: %v", got)
	}
	u2 := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("u2:pw2")), "X-Organization": "lab"}
	e.must(403, e.do("GET", "/api/tasks", nil, u2)) // not a member

	orgHook := e.must(201, e.do("POST", "/api/webhooks", mustJSON(map[string]any{"target_url": "http://127.0.0.1:9/x",
		"type": "organization", "events": []string{"create:job"}}), inOrg)).obj(t)
	projHook := e.must(201, e.do("POST", "/api/webhooks", mustJSON(map[string]any{"target_url": "http://127.0.0.1:9/x",
		"type": "project", "project_id": pid, "events": []string{"create:job"}}), inOrg)).obj(t)
	if orgHook["organization"] != orgID || orgHook["project_id"] != nil || projHook["organization"] != orgID {
		t.Errorf("webhooks: organization %v (project %v), project webhook organization %v", orgHook["organization"], orgHook["project_id"], projHook["organization"])
	}
	if got := count("/api/webhooks?org=", nil); got != 0.0 {
		t.Errorf("sandbox webhooks %v", got)
	}

	body, ct := multipartBody(map[string]string{"image_quality": "70"}, images(1))
	rq := e.must(202, e.do("POST", fmt.Sprintf("/api/tasks/%d/data/", tid), body, map[string]string{"Content-Type": ct, "X-Organization": "lab"})).obj(t)["rq_id"].(string)
	rec.waitFor(t, rq, "finished", 1)
	got, _ := e.request(rq)
	if got.Operation.OrgID == nil || float64(*got.Operation.OrgID) != orgID {
		t.Errorf("request operation org_id %v, want %v", got.Operation.OrgID, orgID)
	}
	if n := count(fmt.Sprintf("/api/requests?task_id=%d", tid), inOrg); n != 1.0 {
		t.Errorf("requests under the organization: %v", n)
	}
	if n := count(fmt.Sprintf("/api/requests?task_id=%d&org=", tid), nil); n != 0.0 {
		t.Errorf("requests in the sandbox: %v", n)
	}
	for path, want := range map[string]float64{fmt.Sprintf("/api/jobs?task_id=%d", tid): 1, fmt.Sprintf("/api/jobs?task_id=%d&org=", tid): 0,
		fmt.Sprintf("/api/jobs?task_id=%d&org_id=%v", tid, orgID): 1} {
		if got := count(path, nil); got != want {
			t.Errorf("GET %s: count %v, want %v", path, got, want)
		}
	}

	e.must(204, e.do("DELETE", fmt.Sprintf("/api/organizations/%v", orgID), nil, nil))
	e.must(404, e.do("GET", fmt.Sprintf("/api/organizations/%v", orgID), nil, nil))
	if got := count("/api/webhooks", nil); got != 0.0 {
		t.Errorf("webhooks after the organization's deletion: %v (they cascade)", got)
	}
	if task := e.must(200, e.do("GET", fmt.Sprintf("/api/tasks/%d", tid), nil, nil)).obj(t); task["organization"] != nil {
		t.Errorf("task organization after the deletion %v, want null (SET_NULL)", task["organization"])
	}
	if r := e.do("GET", "/api/tasks", nil, inOrg); r.status != http.StatusNotFound {
		t.Errorf("deleted slug: %d", r.status)
	}
}
