package cvatsim_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cvatbench/cvatbench/cvatsim"
)

func TestAboutNeedsNoAuth(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	r := e.must(200, e.do("GET", "/api/server/about", nil, map[string]string{"Authorization": ""}))
	if got := r.obj(t)["version"]; got != "2.73.0" {
		t.Fatalf("version %v", got)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/vnd.cvat+json" {
		t.Fatalf("content type %q", ct)
	}
	if id := r.header.Get("X-Request-Id"); len(id) != 36 || id[14] != '4' {
		t.Fatalf("X-Request-Id %q is not a uuid4", id)
	}
}

func TestAuthFailures(t *testing.T) {
	e := newEnv(t, cvatsim.Options{Users: []cvatsim.UserSpec{{Username: "u2", Password: "pw2"}}})
	tests := []struct {
		name   string
		authz  string
		status int
		detail string
	}{
		{"none", "", 401, "Authentication credentials were not provided."},
		{"bad token", "Token nope", 401, "Invalid token."},
		{"bad pat", "Bearer nope", 401, "Invalid token."},
		{"bad basic", "Basic " + b64("admin:wrong"), 401, "Invalid username/password."},
		{"good basic", basicAdmin, 200, ""},
		{"other user", "Basic " + b64("u2:pw2"), 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", "/api/users/self", nil, map[string]string{"Authorization": tc.authz})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status != 401 {
				return
			}
			if got := r.header.Get("WWW-Authenticate"); got != "Token" {
				t.Fatalf("WWW-Authenticate %q", got)
			}
			if got := r.obj(t)["detail"]; got != tc.detail {
				t.Fatalf("detail %q, want %q", got, tc.detail)
			}
		})
	}
}

// login returns the token and the two cookies.
func (e *env) login() (key string, cookies map[string]string) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/api/auth/login", strings.NewReader(`{"username":"admin","password":"admin"}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		e.t.Fatalf("login: %d", res.StatusCode)
	}
	cookies = map[string]string{}
	for _, c := range res.Cookies() {
		cookies[c.Name] = c.Value
	}
	if len(res.Header.Values("Set-Cookie")) != 2 || cookies["sessionid"] == "" || cookies["csrftoken"] == "" {
		e.t.Fatalf("login cookies %v", res.Header.Values("Set-Cookie"))
	}
	var body struct{ Key string }
	resp{body: mustRead(res)}.json(e.t, &body)
	return body.Key, cookies
}

func mustRead(res *http.Response) []byte {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return []byte(b.String())
		}
	}
}

func TestLoginTokenAndSessionCSRF(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	key, ck := e.login()
	if len(key) != 40 {
		t.Fatalf("key %q", key)
	}
	e.must(200, e.do("GET", "/api/users/self", nil, map[string]string{"Authorization": "Token " + key}))
	cookie := "sessionid=" + ck["sessionid"] + "; csrftoken=" + ck["csrftoken"]
	task := mustJSON(map[string]any{"name": "s"})
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
		detail string
	}{
		{"session GET", map[string]string{"Authorization": "", "Cookie": cookie}, 0, ""},
		{"session POST without token", map[string]string{"Authorization": "", "Cookie": cookie}, 403, "CSRF Failed: CSRF token missing."},
		{"session POST wrong token", map[string]string{"Authorization": "", "Cookie": cookie, "X-CSRFToken": "x"}, 403, "CSRF Failed: CSRF token incorrect."},
		{"session POST bad origin", map[string]string{"Authorization": "", "Cookie": cookie, "X-CSRFToken": ck["csrftoken"], "Origin": "http://evil.example"}, 403, "CSRF Failed: Origin checking failed - http://evil.example does not match any trusted origins."},
		{"session POST with token and origin", map[string]string{"Authorization": "", "Cookie": cookie, "X-CSRFToken": ck["csrftoken"], "Origin": e.url}, 201, ""},
		// Session comes before Basic: a cookie jar plus Basic fails CSRF (API.md §2.2).
		{"cookie jar plus basic", map[string]string{"Cookie": cookie}, 403, "CSRF Failed: CSRF token missing."},
		// Token comes before the session class.
		{"cookie jar plus token", map[string]string{"Authorization": "Token " + key, "Cookie": cookie}, 201, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r resp
			if tc.status == 0 {
				r = e.must(200, e.do("GET", "/api/users/self", nil, tc.hdr))
				return
			}
			r = e.do("POST", "/api/tasks", task, tc.hdr)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.detail != "" && r.obj(t)["detail"] != tc.detail {
				t.Fatalf("detail %q", r.obj(t)["detail"])
			}
		})
	}
	bad := e.do("POST", "/api/auth/login", []byte(`{"username":"admin","password":"x"}`), map[string]string{"Authorization": ""})
	if bad.status != 400 || !contains(string(bad.body), "non_field_errors") {
		t.Fatalf("failed login: %d %s", bad.status, bad.body)
	}
}

func TestAccessTokens(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	r := e.must(201, e.do("POST", "/api/auth/access_tokens", []byte(`{"name":"cvatbench","expiry_date":null,"read_only":false}`), nil))
	pat := r.obj(t)["value"].(string)
	bearer := map[string]string{"Authorization": "Bearer " + pat}
	e.must(200, e.do("GET", "/api/users/self", nil, bearer))
	e.must(201, e.do("POST", "/api/tasks", []byte(`{"name":"x"}`), bearer))
	// A PAT cannot create a PAT.
	e.must(403, e.do("POST", "/api/auth/access_tokens", []byte(`{"name":"again"}`), bearer))
	ro := e.must(201, e.do("POST", "/api/auth/access_tokens", []byte(`{"name":"ro","read_only":true}`), nil)).obj(t)["value"].(string)
	e.must(200, e.do("GET", "/api/tasks", nil, map[string]string{"Authorization": "Bearer " + ro}))
	e.must(403, e.do("POST", "/api/tasks", []byte(`{"name":"x"}`), map[string]string{"Authorization": "Bearer " + ro}))
}

// The token facts measured on CVAT 2.73.0 (CALIBRATION.md §5.4): read-only by default, created with the
// legacy login key too, self, DELETE 204 then 404, and a revoked token gets 401.
func TestAccessTokenLifecycle(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	login := e.must(200, e.do("POST", "/api/auth/login", []byte(`{"username":"admin","password":"admin"}`),
		map[string]string{"Authorization": ""})).obj(t)
	legacy := map[string]string{"Authorization": "Token " + login["key"].(string)}
	created := e.must(201, e.do("POST", "/api/auth/access_tokens", []byte(`{"name":"default"}`), legacy)).obj(t)
	if created["read_only"] != true {
		t.Fatalf("a token created without read_only: %v, want read-only", created["read_only"])
	}
	bearer := map[string]string{"Authorization": "Bearer " + created["value"].(string)}
	e.must(403, e.do("POST", "/api/projects", []byte(`{"name":"p"}`), bearer))
	self := e.must(200, e.do("GET", "/api/auth/access_tokens/self", nil, bearer)).obj(t)
	if self["id"] != created["id"] || self["read_only"] != true || self["value"] != nil {
		t.Fatalf("self %v", self)
	}
	path := fmt.Sprintf("/api/auth/access_tokens/%v", created["id"])
	e.must(200, e.do("GET", path, nil, nil))
	e.must(204, e.do("DELETE", path, nil, nil))
	if r := e.must(404, e.do("DELETE", path, nil, nil)); !contains(string(r.body), "No AccessToken matches the given query.") {
		t.Fatalf("second delete: %s", r.body)
	}
	e.must(401, e.do("GET", "/api/users/self", nil, bearer))
	// As Token instead of Bearer, a PAT is not a login key.
	writable := e.must(201, e.do("POST", "/api/auth/access_tokens", []byte(`{"name":"w","read_only":false}`), nil)).obj(t)
	e.must(401, e.do("GET", "/api/users/self", nil, map[string]string{"Authorization": "Token " + writable["value"].(string)}))
}

// GET /api/tasks/{id}/data/meta, which the SDK's task.get_meta() reads: 400 before the data, then the frames.
func TestTaskDataMeta(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	id := e.createTask(map[string]any{"name": "meta", "segment_size": 2})
	path := fmt.Sprintf("/api/tasks/%d/data/meta", id)
	e.must(400, e.do("GET", path, nil, nil))
	e.uploadSingle(id, map[string]string{"image_quality": "55"}, images(3))
	e.waitVisible(id)
	var meta struct {
		Size         int    `json:"size"`
		ImageQuality int    `json:"image_quality"`
		StopFrame    int    `json:"stop_frame"`
		Storage      string `json:"storage"`
		Frames       []struct {
			Width, Height int
			Name          string
		} `json:"frames"`
	}
	e.must(200, e.do("GET", path, nil, nil)).json(t, &meta)
	if meta.Size != 3 || meta.ImageQuality != 55 || meta.StopFrame != 2 || meta.Storage != "local" || len(meta.Frames) != 3 ||
		meta.Frames[0].Width != 8 || meta.Frames[0].Height != 6 || meta.Frames[2].Name != "img_0002.png" {
		t.Fatalf("meta %+v", meta)
	}
}

func TestAcceptNegotiation(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	tests := []struct {
		accept string
		status int
	}{
		{"application/vnd.cvat+json", 200},
		{"*/*", 200},
		{"application/json, text/plain, */*", 200},
		{"application/json", 406},
		{"application/vnd.cvat+json; version=1.0", 406},
	}
	for _, tc := range tests {
		t.Run(tc.accept, func(t *testing.T) {
			r := e.do("GET", "/api/tasks", nil, map[string]string{"Accept": tc.accept})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d", r.status, tc.status)
			}
			if tc.status == 406 && r.header.Get("Content-Type") != "application/vnd.cvat+json" {
				t.Fatalf("406 content type %q", r.header.Get("Content-Type"))
			}
		})
	}
	r := e.do("GET", "/api/tasks", nil, map[string]string{"Accept": "application/json"})
	if got := r.obj(t)["detail"]; got != "Could not satisfy the request Accept header." {
		t.Fatalf("detail %q", got)
	}
}

func TestURLRouting(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	id := e.createTask(map[string]any{"name": "r"})
	tests := []struct {
		name   string
		method string
		path   string
		status int
		html   bool
	}{
		{"tasks trailing slash", "GET", "/api/tasks/", 404, true},
		{"task trailing slash", "GET", fmt.Sprintf("/api/tasks/%d/", id), 404, true},
		{"jobs trailing slash", "GET", "/api/jobs/", 404, true},
		{"unknown url", "GET", "/api/nothing", 404, true},
		{"root", "GET", "/", 404, true},
		{"unknown task", "GET", "/api/tasks/999", 404, false},
		{"non-numeric id", "GET", "/api/tasks/abc", 404, false},
		{"method not allowed", "PUT", "/api/tasks", 405, false},
		{"data with slash is routed", "POST", fmt.Sprintf("/api/tasks/%d/data/", id), 202, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr map[string]string
			if tc.status == 202 {
				hdr = map[string]string{"Upload-Start": ""}
			}
			r := e.do(tc.method, tc.path, nil, hdr)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if isHTML := strings.HasPrefix(r.header.Get("Content-Type"), "text/html"); isHTML != tc.html {
				t.Fatalf("content type %q", r.header.Get("Content-Type"))
			}
		})
	}
}

func TestOrganizationContext(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	tests := []struct {
		query  string
		hdr    map[string]string
		status int
	}{
		{"org=", nil, 200},
		{"", map[string]string{"X-Organization": ""}, 200},
		{"org=acme", nil, 404},
		{"org_id=3", nil, 404},
		{"org_id=3&org=", nil, 400},
		{"org=a", map[string]string{"X-Organization": "b"}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.query+fmt.Sprint(tc.hdr), func(t *testing.T) {
			r := e.do("GET", "/api/jobs?"+tc.query, nil, tc.hdr)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
		})
	}
}

func TestTaskValidation(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	p := e.must(201, e.do("POST", "/api/projects", []byte(`{"name":"p","labels":[{"name":"car"}]}`), nil)).obj(t)
	pid := int(p["id"].(float64))
	tests := []struct {
		name  string
		body  string
		field string
	}{
		{"missing name", `{}`, "name"},
		{"blank name", `{"name":" "}`, "name"},
		{"negative segment size", `{"name":"a","segment_size":-1}`, "segment_size"},
		{"one replica", `{"name":"a","consensus_replicas":1}`, "consensus_replicas"},
		{"labels and project", fmt.Sprintf(`{"name":"a","project_id":%d,"labels":[{"name":"x"}]}`, pid), "non_field_errors"},
		{"unknown project", `{"name":"a","project_id":999}`, "project_id"},
		{"wrong type", `{"name":5}`, "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.must(400, e.do("POST", "/api/tasks", []byte(tc.body), nil))
			if _, ok := r.obj(t)[tc.field]; !ok {
				t.Fatalf("no %q in %s", tc.field, r.body)
			}
		})
	}
}

func TestTaskBeforeDataOmitsFields(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	id := e.createTask(map[string]any{"name": "fresh"})
	task := e.must(200, e.do("GET", fmt.Sprintf("/api/tasks/%d", id), nil, nil)).obj(t)
	for _, k := range []string{"size", "image_quality", "data_chunk_size", "data_cloud_storage_id"} {
		if _, ok := task[k]; ok {
			t.Errorf("%s present before data", k)
		}
	}
	if task["data"] != nil || task["media_type"] != "" || task["overlap"] != nil {
		t.Errorf("task before data: %v", task)
	}
	e.must(202, e.do("POST", fmt.Sprintf("/api/tasks/%d/data", id), nil, map[string]string{"Upload-Start": ""}))
	task = e.must(200, e.do("GET", fmt.Sprintf("/api/tasks/%d", id), nil, nil)).obj(t)
	if task["size"] != 0.0 || task["data"] == nil {
		t.Errorf("task with a data row: size %v data %v", task["size"], task["data"])
	}
	if _, ok := task["image_quality"]; ok {
		t.Error("image_quality present while processing")
	}
}

func TestListTasksSearchAndPagination(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	for i := 0; i < 12; i++ {
		e.createTask(map[string]any{"name": fmt.Sprintf("alpha-%02d", i)})
	}
	e.createTask(map[string]any{"name": "beta"})
	var page struct {
		Count   int
		Next    *string
		Results []struct {
			ID   int
			Name string
		}
	}
	e.must(200, e.do("GET", "/api/tasks?search=alpha", nil, nil)).json(t, &page)
	if page.Count != 12 || len(page.Results) != 10 || page.Next == nil || page.Results[0].Name != "alpha-11" {
		t.Fatalf("page 1: %+v", page)
	}
	u, _ := url.Parse(*page.Next)
	if u.Query().Get("search") != "alpha" || u.Query().Get("page") != "2" || u.Scheme != "http" {
		t.Fatalf("next %q", *page.Next)
	}
	e.must(200, e.do("GET", u.RequestURI(), nil, nil)).json(t, &page)
	if len(page.Results) != 2 || page.Next != nil {
		t.Fatalf("page 2: %+v", page)
	}
	e.must(404, e.do("GET", "/api/tasks?search=alpha&page=3", nil, nil))
}

func TestDeleteProjectCascades(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	p := e.must(201, e.do("POST", "/api/projects", []byte(`{"name":"p","labels":[{"name":"car"}]}`), nil)).obj(t)
	pid := int(p["id"].(float64))
	id := e.createTask(map[string]any{"name": "in p", "project_id": pid})
	e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(2))
	tl := e.waitVisible(id)
	e.must(204, e.do("DELETE", fmt.Sprintf("/api/projects/%d", pid), nil, nil))
	e.must(404, e.do("GET", fmt.Sprintf("/api/tasks/%d", id), nil, nil))
	e.must(404, e.do("GET", fmt.Sprintf("/api/jobs/%d", tl.JobIDs[0]), nil, nil))
	if n := e.s.TaskCount(); n != 0 {
		t.Fatalf("task count %d", n)
	}
}

// The schema knows neither the proxy's 413 nor HEAD, so this test talks to
// the handler without the validator.
func TestBodyLimitAndHead(t *testing.T) {
	s, err := cvatsim.New(cvatsim.Options{Profile: instantProfile(t), MaxBodyBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.Close() })
	e := &env{t: t, s: s, srv: srv, url: srv.URL}
	r := e.do("POST", "/api/tasks", []byte(`{"name":"`+strings.Repeat("x", 2000)+`"}`), nil)
	if r.status != 413 || r.header.Get("X-Request-Id") != "" {
		t.Fatalf("oversized body: %d, X-Request-Id %q", r.status, r.header.Get("X-Request-Id"))
	}
	e.must(200, e.do("HEAD", "/api/tasks", nil, nil))
}
