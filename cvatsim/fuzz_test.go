package cvatsim_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/cvatsim"
)

// fuzzCall sends one request to h as the default admin and fails on a server error (a recovered panic is a
// 500 too).
func fuzzCall(t *testing.T, h http.Handler, method, path string, hdr map[string]string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.SetBasicAuth(cvatsim.DefaultUsername, cvatsim.DefaultPassword)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s %s %v: status %d: %s", method, path, hdr, rec.Code, rec.Body.String())
	}
	return rec
}

// FuzzUploadParsing sends arbitrary data requests to a fresh emulator (instant profile): multipart or JSON
// bodies with any Content-Type through each upload header of the SDK protocol (none, Upload-Start,
// Upload-Multiple, Upload-Finish), and TUS creations and PATCHes with arbitrary Upload-Length, Upload-Metadata
// and Upload-Offset. No answer may be a 5xx, no handler or import worker may panic, and a creation that was
// accepted (202) must end, committed or failed, instead of hanging.
func FuzzUploadParsing(f *testing.F) {
	jpeg := []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	mp := "--B\r\nContent-Disposition: form-data; name=\"image_quality\"\r\n\r\n70\r\n" +
		"--B\r\nContent-Disposition: form-data; name=\"client_files[0]\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n" +
		string(jpeg) + "\r\n--B--\r\n"
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	f.Add(uint8(0), "multipart/form-data; boundary=B", []byte(mp), "", "")
	f.Add(uint8(1), "", []byte(nil), "", "")
	f.Add(uint8(2), "multipart/form-data; boundary=B", []byte(mp), "", "")
	f.Add(uint8(3), "application/json", []byte(`{"image_quality":70,"client_files":[],"server_files":["a.jpg"]}`), "", "")
	f.Add(uint8(3), "application/json", []byte(`{"image_quality":"x","sorting_method":"random","chunk_size":-1}`), "", "")
	f.Add(uint8(4), "", []byte(nil), "12", "filename "+b64("a.jpg")+",filetype "+b64("image/jpeg"))
	f.Add(uint8(4), "", []byte(nil), "-1", "filename !!!")
	f.Add(uint8(4), "", []byte(nil), "99999999999999999999", "")
	f.Add(uint8(5), "application/offset+octet-stream", jpeg, "0", "")
	f.Add(uint8(5), "application/offset+octet-stream", jpeg, "3", "")
	f.Add(uint8(0), "multipart/form-data; boundary=", []byte("--\r\n"), "", "")
	f.Add(uint8(0), "text/plain", []byte("hello"), "", "")
	f.Add(uint8(128), "multipart/form-data; boundary=B", []byte(mp), "", "")
	f.Add(uint8(131), "application/json", []byte(`{"image_quality":70,"job_file_mapping":[["a.jpg"],["b.jpg"]]}`), "", "")

	prof, err := cvatsim.LookupProfile("instant")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, mode uint8, contentType string, body []byte, h1, h2 string) {
		// The high bit of mode turns on the pre-allocated jobs what-if: its rows come from the same parse.
		s, err := cvatsim.New(cvatsim.Options{Profile: prof, WebhookRetryDelays: []time.Duration{},
			WhatIf: cvatsim.WhatIf{PreallocJobs: mode >= 128}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		h := s.Handler()
		rec := fuzzCall(t, h, http.MethodPost, "/api/tasks", map[string]string{"Content-Type": "application/json"},
			[]byte(`{"name":"fuzz","labels":[{"name":"car"}],"segment_size":2}`))
		var task struct{ ID int }
		if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &task) != nil || task.ID == 0 {
			t.Fatalf("create task: %d %s", rec.Code, rec.Body.String())
		}
		data := "/api/tasks/" + strconv.Itoa(task.ID) + "/data/"
		ct := map[string]string{"Content-Type": contentType}
		with := func(k, v string) map[string]string {
			m := map[string]string{"Content-Type": contentType, k: v}
			return m
		}
		finishNeeded := false
		switch mode % 6 {
		case 0:
			rec = fuzzCall(t, h, http.MethodPost, data, ct, body)
		case 1:
			rec = fuzzCall(t, h, http.MethodPost, data, with("Upload-Start", "true"), body)
			finishNeeded = true
		case 2:
			rec = fuzzCall(t, h, http.MethodPost, data, with("Upload-Multiple", "true"), body)
			finishNeeded = true
		case 3:
			rec = fuzzCall(t, h, http.MethodPost, data, with("Upload-Finish", "true"), body)
		case 4:
			rec = fuzzCall(t, h, http.MethodPost, data, map[string]string{"Tus-Resumable": "1.0.0",
				"Upload-Length": h1, "Upload-Metadata": h2, "Content-Type": contentType}, body)
			finishNeeded = true
		case 5:
			rec = fuzzCall(t, h, http.MethodPost, data, map[string]string{"Tus-Resumable": "1.0.0",
				"Upload-Length": strconv.Itoa(len(body)), "Upload-Metadata": "filename " + base64.StdEncoding.EncodeToString([]byte("a.jpg"))}, nil)
			if loc, err := url.Parse(rec.Header().Get("Location")); err == nil && rec.Code == http.StatusCreated {
				fuzzCall(t, h, http.MethodPatch, loc.Path, map[string]string{"Tus-Resumable": "1.0.0",
					"Upload-Offset": h1, "Content-Type": contentType}, body)
				fuzzCall(t, h, http.MethodHead, loc.Path, map[string]string{"Tus-Resumable": "1.0.0"}, nil)
			}
			finishNeeded = true
		}
		if finishNeeded {
			rec = fuzzCall(t, h, http.MethodPost, data, map[string]string{"Upload-Finish": "true",
				"Content-Type": "application/json"}, []byte(`{"image_quality":70}`))
		}
		if rec.Code != http.StatusAccepted {
			return
		}
		fuzzCall(t, h, http.MethodGet, "/api/jobs?task_id="+strconv.Itoa(task.ID)+"&page_size=all", nil, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.WaitJobsVisible(ctx, task.ID); err != nil {
			t.Fatalf("accepted creation did not end: %v", err)
		}
		fuzzCall(t, h, http.MethodGet, "/api/tasks/"+strconv.Itoa(task.ID), nil, nil)
		fuzzCall(t, h, http.MethodGet, "/api/jobs?task_id="+strconv.Itoa(task.ID), nil, nil)
	})
}
