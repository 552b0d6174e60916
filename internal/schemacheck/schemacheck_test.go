package schemacheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const base = "http://127.0.0.1:8080"

// about is a correct About body (API.md §3).
const about = `{"name":"Computer Vision Annotation Tool","subtitle":"Open Data Annotation Platform",` +
	`"description":"CVAT","version":"2.73.0","logo_url":"http://127.0.0.1:8080/static/logo.svg"}`

// taskRead is the TaskRead of API.md §11.1.
const taskRead = `{"url":"http://localhost:8080/api/tasks/42","id":42,"name":"bench-0001","project_id":9,
 "project_name":"cvatbench","owner":{"url":"http://localhost:8080/api/users/1","id":1,
 "username":"admin1","first_name":"Admin","last_name":"First"},"assignee":null,"bug_tracker":"",
 "created_date":"2026-08-20T10:00:00.912345Z","updated_date":"2026-08-20T10:00:00.918001Z",
 "overlap":null,"segment_size":2,"status":"annotation","guide_id":null,"data":null,"dimension":"",
 "mode":"","media_type":"","subset":"","organization_id":null,"organization":null,
 "target_storage":null,"source_storage":null,
 "jobs":{"count":0,"completed":0,"validation":0,"url":"http://localhost:8080/api/jobs?task_id=42"},
 "labels":{"url":"http://localhost:8080/api/labels?task_id=42"},"assignee_updated_date":null,
 "validation_mode":null,"consensus_enabled":false}`

// request is the finished Request of API.md §11.3.
const request = `{"status":"finished","message":"","id":"action=create&target=task&target_id=42",
 "operation":{"type":"create:task","target":"task","project_id":9,"task_id":42,"job_id":null,
              "org_id":null,"format":null,"lightweight":null},
 "progress":0.0,"created_date":"2026-08-20T10:00:01.204311Z",
 "started_date":"2026-08-20T10:00:01.262087Z","finished_date":"2026-08-20T10:00:01.839512Z",
 "expiry_date":"2026-08-20T10:08:21.839512Z","owner":{"id":1,"username":"admin1"},
 "result_url":null,"result_id":null}`

const rqPath = "/api/requests/action%3Dcreate%26target%3Dtask%26target_id%3D42"

// withoutKey returns the JSON object s without key.
func withoutKey(t *testing.T, s, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, key)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withKey returns the JSON object s with key set to v.
func withKey(t *testing.T, s, key string, v any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	m[key] = v
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hdr builds a header from name/value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// newReq builds a request; headers are name/value pairs.
func newReq(t *testing.T, method, path string, kv ...string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header = hdr(kv...)
	return r
}

// sharedDir is the directory containing cvat/, as Load finds it.
func sharedDir(t *testing.T, v *Validator) string {
	t.Helper()
	return filepath.Dir(filepath.Dir(v.Path))
}

// jobsPage reads assets/jobs.json.
func jobsPage(t testing.TB, v *Validator) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(v.Path), "assets", "jobs.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadOnce(t *testing.T) {
	a, b := Load(t), Load(t)
	if a != b {
		t.Fatal("Load built the validator twice")
	}
	t.Logf("schema %s loaded in %s", a.Path, a.LoadDuration)
}

var (
	cvatCT = []string{"Content-Type", "application/vnd.cvat+json"}
	jsonCT = []string{"Content-Type", "application/json"}
)

func TestCheckResponse(t *testing.T) {
	v := Load(t)
	jobs := string(jobsPage(t, v))
	tests := []struct {
		name    string
		req     *http.Request
		status  int
		header  http.Header
		body    string
		wantErr string // substring; "" means valid
	}{
		{"about ok", newReq(t, "GET", "/api/server/about"), 200, hdr(cvatCT...), about, ""},
		{"about version as number", newReq(t, "GET", "/api/server/about"), 200, hdr(cvatCT...), withKey(t, about, "version", 2.73), "version"},
		{"about missing version", newReq(t, "GET", "/api/server/about"), 200, hdr(cvatCT...), withoutKey(t, about, "version"), "version"},
		{"about as text/plain", newReq(t, "GET", "/api/server/about"), 200, hdr("Content-Type", "text/plain"), about, "Content-Type"},
		{"about undocumented 201", newReq(t, "GET", "/api/server/about"), 201, hdr(cvatCT...), about, "status is not supported"},
		{"task 201 ok", newReq(t, "POST", "/api/tasks"), 201, hdr(cvatCT...), taskRead, ""},
		{"task without jobs", newReq(t, "POST", "/api/tasks"), 201, hdr(cvatCT...), withoutKey(t, taskRead, "jobs"), "jobs"},
		{"task size null", newReq(t, "GET", "/api/tasks/42"), 200, hdr(cvatCT...), withKey(t, taskRead, "size", nil), "size"},
		{"task 200 for create", newReq(t, "POST", "/api/tasks"), 200, hdr(cvatCT...), taskRead, "status is not supported"},
		{"jobs page asset", newReq(t, "GET", "/api/jobs?task_id=42&page_size=all&sort=id"), 200, hdr(cvatCT...), jobs, ""},
		{"jobs page with version param", newReq(t, "GET", "/api/jobs?org=&task_id=42&page=1"), 200, hdr("Content-Type", "application/vnd.cvat+json; version=2.0"), jobs, ""},
		{"request ok", newReq(t, "GET", rqPath), 200, hdr(cvatCT...), request, ""},
		{"request bad status enum", newReq(t, "GET", rqPath), 200, hdr(cvatCT...), withKey(t, request, "status", "done"), "status"},
		{"request progress as string", newReq(t, "GET", rqPath), 200, hdr(cvatCT...), withKey(t, request, "progress", "0"), "progress"},
		{"request 404 html", newReq(t, "GET", rqPath), 404, hdr("Content-Type", "text/html; charset=utf-8"), "There is no request with specified id", ""},
		{"request 404 json", newReq(t, "GET", rqPath), 404, hdr(cvatCT...), `{"detail":"Not found."}`, ""},
		{"task 404 html not allowed", newReq(t, "GET", "/api/tasks/42"), 404, hdr("Content-Type", "text/html"), "<h1>Not Found</h1>", "Content-Type"},
		{"task 404 detail", newReq(t, "GET", "/api/tasks/42"), 404, hdr(cvatCT...), `{"detail":"No Task matches the given query."}`, ""},
		{"task 404 bad shape", newReq(t, "GET", "/api/tasks/42"), 404, hdr(cvatCT...), `{"error":"nope"}`, "detail"},
		{"401 with WWW-Authenticate", newReq(t, "GET", "/api/users/self"), 401, hdr("Content-Type", "application/vnd.cvat+json", "WWW-Authenticate", "Token"), `{"detail":"Invalid token."}`, ""},
		{"401 without WWW-Authenticate", newReq(t, "GET", "/api/users/self"), 401, hdr(cvatCT...), `{"detail":"Invalid token."}`, "WWW-Authenticate"},
		{"406 accept", newReq(t, "GET", "/api/server/about", "Accept", "application/json"), 406, hdr(cvatCT...), `{"detail":"Could not satisfy the request Accept header."}`, ""},
		{"400 field errors", newReq(t, "POST", "/api/tasks"), 400, hdr(cvatCT...), `{"name":["This field is required."]}`, ""},
		{"400 list", newReq(t, "POST", "/api/tasks/1/data/", "Upload-Finish", ""), 400, hdr(cvatCT...), `["Adding more data is not supported"]`, ""},
		{"405 on a documented method", newReq(t, "GET", "/api/auth/access_tokens"), 405, hdr(cvatCT...), `{"detail":"Method \"GET\" not allowed."}`, "405"},
		{"405 on an undocumented method", newReq(t, "PUT", "/api/server/about"), 405, hdr(cvatCT...), `{"detail":"Method \"PUT\" not allowed."}`, ""},
		{"500 is a bug", newReq(t, "GET", "/api/tasks/42"), 500, hdr(cvatCT...), `{"detail":"boom"}`, "500"},
		{"unknown url html 404", newReq(t, "GET", "/api/tasks/"), 404, hdr("Content-Type", "text/html"), "<h1>Not Found</h1>", ""},
		{"unknown url 200", newReq(t, "GET", "/api/nothing"), 200, hdr(cvatCT...), `{}`, "no matching operation"},
		{"upload-start 202 empty", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Start", ""), 202, hdr(cvatCT...), "", ""},
		{"upload-start 202 with body", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Start", ""), 202, hdr(cvatCT...), `{"x":1}`, "want empty"},
		{"upload-multiple 200 empty", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Multiple", ""), 200, hdr(cvatCT...), "", ""},
		{"upload-finish 202 rq_id", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Finish", ""), 202, hdr(cvatCT...), `{"rq_id":"action=create&target=task&target_id=42"}`, ""},
		{"upload-finish no slash", newReq(t, "POST", "/api/tasks/42/data", "Upload-Finish", ""), 202, hdr(cvatCT...), `{"rq_id":"action=create&target=task&target_id=42"}`, ""},
		{"upload-finish 202 empty", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Finish", ""), 202, hdr(cvatCT...), "", "decode"},
		{"upload-finish 409 rq_id", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Finish", ""), 409, hdr(cvatCT...), `{"rq_id":"action=create&target=task&target_id=42"}`, ""},
		{"upload-finish 409 detail", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Finish", ""), 409, hdr(cvatCT...), `{"detail":"busy"}`, "rq_id"},
		{"tus create 201", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Length", "10", "Upload-Metadata", "filename YS5qcGc=", "Tus-Resumable", "1.0.0"), 201,
			hdr("Location", base+"/api/tasks/42/data/1_abc", "Upload-Filename", "a.jpg", "Tus-Resumable", "1.0.0"), "", ""},
		{"tus create without Location", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Length", "10", "Upload-Metadata", "filename YS5qcGc="), 201,
			hdr("Upload-Filename", "a.jpg", "Tus-Resumable", "1.0.0"), "", "Location"},
		{"tus patch 204", newReq(t, "PATCH", "/api/tasks/42/data/1_abc", "Tus-Resumable", "1.0.0"), 204, hdr("Upload-Offset", "10"), "", ""},
		{"tus patch 204 no offset", newReq(t, "PATCH", "/api/tasks/42/data/1_abc", "Tus-Resumable", "1.0.0"), 204, hdr(), "", "Upload-Offset"},
		{"chunk zip", newReq(t, "GET", "/api/jobs/7/data?type=chunk&index=0&quality=compressed"), 200, hdr("Content-Type", "application/zip"), "PK\x03\x04", ""},
		{"chunk as json", newReq(t, "GET", "/api/jobs/7/data?type=chunk&index=0"), 200, hdr(cvatCT...), `"x"`, "Content-Type"},
		{"chunk empty", newReq(t, "GET", "/api/jobs/7/data?type=chunk&index=0"), 200, hdr("Content-Type", "application/zip"), "", "empty"},
		{"chunk index out of range", newReq(t, "GET", "/api/jobs/7/data?type=chunk&index=9"), 400, hdr(cvatCT...), `"Invalid chunk number '9'. The chunk number should be in the [0, 0] range"`, ""},
		{"delete 204", newReq(t, "DELETE", "/api/tasks/42"), 204, hdr(), "", ""},
		{"emulator-only path skipped", newReq(t, "GET", "/_cvatsim/tasks/1/timeline"), 200, hdr("Content-Type", "application/json"), `{"job_ids":[1]}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.CheckResponse(tc.req, tc.status, tc.header, []byte(tc.body))
			checkErr(t, err, tc.wantErr)
		})
	}
}

// checkErr asserts err against a wanted substring ("" means no error).
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Errorf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("error %q does not contain %q", err, want)
	}
}

// part is one multipart field; file parts have a filename.
type part struct{ name, filename, value string }

// form encodes parts as multipart/form-data.
func form(t *testing.T, parts ...part) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var err error
		if p.filename != "" {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.name, p.filename))
			h.Set("Content-Type", "image/jpeg")
			w, cerr := mw.CreatePart(h)
			if cerr != nil {
				t.Fatal(cerr)
			}
			_, err = w.Write([]byte(p.value))
		} else {
			err = mw.WriteField(p.name, p.value)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

func TestCheckRequest(t *testing.T) {
	v := Load(t)
	ctForm, goodForm := form(t, part{"image_quality", "", "70"}, part{"client_files[0]", "/tmp/x/a.jpg", "\xff\xd8"}, part{"client_files[1]", "b.jpg", "\xff\xd8"})
	ctBadQuality, badQuality := form(t, part{"image_quality", "", "abc"})
	ctOutOfRange, outOfRange := form(t, part{"image_quality", "", "0"})
	ctUnknown, unknownField := form(t, part{"imagequality", "", "70"})
	ctPlain, plainList := form(t, part{"client_files", "a.jpg", "\xff\xd8"})
	ctText, fileAsText := form(t, part{"client_files[0]", "", "a.jpg"})
	tests := []struct {
		name    string
		req     *http.Request
		body    string
		wantErr string
	}{
		{"jobs list", newReq(t, "GET", "/api/jobs?task_id=42&page=1"), "", ""},
		{"jobs sdk query", newReq(t, "GET", "/api/jobs?org=&task_id=42&page=1"), "", ""},
		{"jobs page_size all", newReq(t, "GET", "/api/jobs?task_id=42&page_size=all&sort=id"), "", ""},
		{"jobs page abc", newReq(t, "GET", "/api/jobs?task_id=42&page=abc"), "", "page"},
		{"jobs page_size abc", newReq(t, "GET", "/api/jobs?task_id=42&page_size=abc"), "", "page_size"},
		{"jobs task_id abc", newReq(t, "GET", "/api/jobs?task_id=x"), "", "task_id"},
		{"request encoded id", newReq(t, "GET", rqPath), "", ""},
		{"request raw id", newReq(t, "GET", "/api/requests/action=create&target=task&target_id=42"), "", ""},
		{"create task", newReq(t, "POST", "/api/tasks", jsonCT...), `{"name":"t","labels":[{"name":"car"}],"segment_size":2}`, ""},
		// Requests are application/json; CVAT's media type is for responses (API.md §1.2).
		{"create task as vnd.cvat+json", newReq(t, "POST", "/api/tasks", cvatCT...), `{"name":"t"}`, "Content-Type"},
		{"create task without name", newReq(t, "POST", "/api/tasks", jsonCT...), `{"labels":[{"name":"car"}]}`, "name"},
		{"create task segment_size string", newReq(t, "POST", "/api/tasks", "Content-Type", "application/json"), `{"name":"t","segment_size":"2"}`, "segment_size"},
		{"upload-start sdk", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Start", "", "Content-Type", "application/json"), "", ""},
		{"upload-start ui", newReq(t, "POST", "/api/tasks/42/data", "Upload-Start", "true", "Content-Type", "application/json"), "{}", ""},
		{"upload-start bad marker", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Start", "maybe"), "", "Upload-Start"},
		{"upload-multiple form", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Multiple", "", "Content-Type", ctForm), string(goodForm), ""},
		{"single form without slash", newReq(t, "POST", "/api/tasks/42/data", "Content-Type", ctForm), string(goodForm), ""},
		{"form image_quality abc", newReq(t, "POST", "/api/tasks/42/data/", "Content-Type", ctBadQuality), string(badQuality), "image_quality"},
		{"form image_quality 0", newReq(t, "POST", "/api/tasks/42/data/", "Content-Type", ctOutOfRange), string(outOfRange), "image_quality"},
		{"form wrong boundary", newReq(t, "POST", "/api/tasks/42/data/", "Content-Type", ctText), string(goodForm), "no parts"},
		{"form unknown field", newReq(t, "POST", "/api/tasks/42/data/", "Content-Type", ctUnknown), string(unknownField), "imagequality"},
		{"form unindexed list", newReq(t, "POST", "/api/tasks/42/data/", "Content-Type", ctPlain), string(plainList), "indexed"},
		{"form file as text", newReq(t, "POST", "/api/tasks/42/data/", "Content-Type", ctText), string(fileAsText), "file part"},
		{"upload-finish json", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Finish", "", "Content-Type", "application/json"), `{"image_quality":70,"upload_file_order":[]}`, ""},
		{"upload-finish quality 0", newReq(t, "POST", "/api/tasks/42/data/", "Upload-Finish", "", "Content-Type", "application/json"), `{"image_quality":0}`, "image_quality"},
		{"tus create", newReq(t, "POST", "/api/tasks/42/data/", "Tus-Resumable", "1.0.0", "Upload-Length", "123", "Upload-Metadata", "filename YS5qcGc="), "", ""},
		{"tus create without filename", newReq(t, "POST", "/api/tasks/42/data/", "Tus-Resumable", "1.0.0", "Upload-Length", "123"), "", "filename"},
		{"tus patch", newReq(t, "PATCH", "/api/tasks/42/data/1_abc", "Tus-Resumable", "1.0.0", "Upload-Offset", "0", "Content-Type", "application/offset+octet-stream"), "xx", ""},
		{"tus patch without offset", newReq(t, "PATCH", "/api/tasks/42/data/1_abc", "Tus-Resumable", "1.0.0", "Content-Type", "application/offset+octet-stream"), "xx", "Upload-Offset"},
		{"chunk", newReq(t, "GET", "/api/jobs/7/data?type=chunk&index=0&quality=compressed"), "", ""},
		{"chunk bad quality", newReq(t, "GET", "/api/jobs/7/data?type=chunk&index=0&quality=best"), "", "quality"},
		{"webhook create", newReq(t, "POST", "/api/webhooks", jsonCT...), `{"target_url":"http://127.0.0.1:9/h","type":"project","project_id":1,"events":["create:job","completed:request[create:task]"],"secret":"s"}`, ""},
		{"webhook bad event", newReq(t, "POST", "/api/webhooks", jsonCT...), `{"target_url":"http://127.0.0.1:9/h","type":"project","project_id":1,"events":["made:job"]}`, "events"},
		{"unknown path", newReq(t, "GET", "/api/nothing"), "", "no matching operation"},
		{"emulator-only", newReq(t, "GET", "/_cvatsim/tasks/x/timeline?page=abc"), "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, v.CheckRequest(tc.req, []byte(tc.body)), tc.wantErr)
		})
	}
}

// recTB records Errorf calls; the embedded interface is nil, so any other method used would panic loudly.
type recTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recTB) Helper() {}

func (r *recTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recTB) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// fixed serves one canned response.
func fixed(status int, ct, body string, extra ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			w.Header().Set(extra[i], extra[i+1])
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	})
}

func TestMiddlewareAndTransport(t *testing.T) {
	v := Load(t)
	const ct = "application/vnd.cvat+json"
	tests := []struct {
		name    string
		handler http.Handler
		method  string
		path    string
		body    string
		// Substrings of the single error each side must report; "" means none.
		wantServer, wantClient string
	}{
		{"correct about", fixed(200, ct, about), "GET", "/api/server/about", "", "", ""},
		{"about version number", fixed(200, ct, `{"name":"n","subtitle":"s","description":"d","version":2.73,"logo_url":"u"}`), "GET", "/api/server/about", "",
			"GET /api/server/about: response 200", "GET /api/server/about: response 200"},
		{"task missing jobs", fixed(200, ct, withoutKey(t, taskRead, "jobs")), "GET", "/api/tasks/42", "", "jobs", "jobs"},
		{"invalid query accepted", fixed(200, ct, `{"count":0,"next":null,"previous":null,"results":[]}`), "GET", "/api/jobs?page=abc", "", "request", "request"},
		// CVAT answers a bad page_size with the default page (API.md §1.3): fine for a server, not for a client.
		{"bad page_size falls back", fixed(200, ct, `{"count":0,"next":null,"previous":null,"results":[]}`), "GET", "/api/jobs?page_size=ten", "", "", "page_size"},
		// The server rejecting an invalid request is right; the client sending it is not.
		{"invalid query rejected", fixed(404, ct, `{"detail":"Invalid page."}`), "GET", "/api/jobs?page=abc", "", "", "request"},
		{"unknown url html 404", fixed(404, "text/html", "<h1>Not Found</h1>"), "GET", "/api/tasks/", "", "", ""},
		{"upload-start", fixed(202, ct, ""), "POST", "/api/tasks/1/data/", "", "", ""},
		{"emulator-only", fixed(200, "text/plain", "x"), "GET", "/_cvatsim/tasks/1/timeline", "", "", ""},
		{"panic recovered as 500", fixed(500, ct, `{"detail":"internal"}`), "GET", "/api/tasks/1", "", "response 500", "response 500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server, client := &recTB{}, &recTB{}
			srv := httptest.NewServer(v.Middleware(server, tc.handler))
			defer srv.Close()
			hc := &http.Client{Transport: v.Transport(client, nil)}
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.path == "/api/tasks/1/data/" {
				req.Header.Set("Upload-Start", "")
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			srv.Close() // handler done: its Errorf calls happened
			for side, c := range map[string]struct {
				rec  *recTB
				want string
			}{"middleware": {server, tc.wantServer}, "transport": {client, tc.wantClient}} {
				got := c.rec.errors()
				switch {
				case c.want == "" && len(got) != 0:
					t.Errorf("%s reported %q, want nothing", side, got)
				case c.want != "" && len(got) != 1:
					t.Errorf("%s reported %q, want one error containing %q", side, got, c.want)
				case c.want != "" && !strings.Contains(got[0], c.want):
					t.Errorf("%s reported %q, want it to contain %q", side, got[0], c.want)
				}
			}
		})
	}
}

// TestTransportKeepsBodies checks that validation does not eat bodies in either direction.
func TestTransportKeepsBodies(t *testing.T) {
	v := Load(t)
	var got string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(strings.Builder)
		_, _ = fmt.Fprint(b, mustRead(t, r))
		got = b.String()
		w.Header().Set("Content-Type", "application/vnd.cvat+json")
		w.WriteHeader(201)
		_, _ = w.Write([]byte(taskRead))
	})
	rec := &recTB{}
	srv := httptest.NewServer(v.Middleware(rec, h))
	defer srv.Close()
	hc := &http.Client{Transport: v.Transport(rec, nil)}
	body := `{"name":"t","labels":[{"name":"car"}]}`
	resp, err := hc.Post(srv.URL+"/api/tasks", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	respBody := mustReadResp(t, resp)
	srv.Close()
	if got != body {
		t.Errorf("handler got body %q, want %q", got, body)
	}
	if respBody != taskRead {
		t.Errorf("client got body %q, want the TaskRead", respBody)
	}
	if errs := rec.errors(); len(errs) != 0 {
		t.Errorf("unexpected reports: %q", errs)
	}
}

func mustRead(t *testing.T, r *http.Request) string {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		t.Error(err)
	}
	return buf.String()
}

func mustReadResp(t *testing.T, r *http.Response) string {
	defer r.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestAssets validates the recorded real server responses, page and items, so the validator is known to
// accept real CVAT output.
func TestAssets(t *testing.T) {
	v := Load(t)
	dir := filepath.Join(sharedDir(t, v), "cvat", "assets")
	tests := []struct{ file, page, item string }{
		{"tasks.json", "PaginatedTaskReadList", "TaskRead"},
		{"jobs.json", "PaginatedJobReadList", "JobRead"},
		{"webhooks.json", "PaginatedWebhookReadList", "WebhookRead"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var page map[string]any
			if err := json.Unmarshal(b, &page); err != nil {
				t.Fatal(err)
			}
			if err := v.CheckValue(tc.page, page); err != nil {
				t.Errorf("page: %v", err)
			}
			items, _ := page["results"].([]any)
			if len(items) == 0 {
				t.Fatal("no results in asset")
			}
			for i, it := range items {
				if err := v.CheckValue(tc.item, it); err != nil {
					t.Errorf("results[%d] (id %v): %v", i, it.(map[string]any)["id"], err)
				}
			}
		})
	}
}

func BenchmarkCheckResponse(b *testing.B) {
	v := Load(b)
	page := jobsPage(b, v)
	req, err := http.NewRequest("GET", base+"/api/jobs?org=&task_id=42&page=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/vnd.cvat+json"}}
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.CheckResponse(req, 200, h, page); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSchemaPath(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		t.Setenv(EnvShared, "/x/shared")
		got, err := schemaPath()
		if err != nil || got != "/x/shared/cvat/schema.yml" {
			t.Errorf("schemaPath() = %q, %v; want /x/shared/cvat/schema.yml", got, err)
		}
	})
	t.Run("module root", func(t *testing.T) {
		t.Setenv(EnvShared, "")
		got, err := schemaPath()
		if err != nil {
			t.Fatal(err)
		}
		// This package is two levels below the module root.
		want, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "cvat", "schema.yml"))
		if filepath.Clean(got) != want {
			t.Errorf("schemaPath() = %q, want %q", got, want)
		}
	})
}
