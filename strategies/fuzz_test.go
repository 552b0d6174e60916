package strategies_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cvatbench/cvatbench/strategies"
)

// fuzzSecret and fuzzHookID are what the receiver under test was armed with.
const (
	fuzzSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	fuzzHookID = 7
)

// fuzzSign is the X-Signature-256 CVAT sends for body.
func fuzzSign(body []byte) string {
	mac := hmac.New(sha256.New, []byte(fuzzSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// fuzzSignedCorrectly is the receiver's contract, written independently: "sha256=" followed by the hex
// (either case) of HMAC-SHA256(secret, body).
func fuzzSignedCorrectly(header string, body []byte) bool {
	rest, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(rest)
	if err != nil {
		return false
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(fuzzSign(body), "sha256="))
	return bytes.Equal(got, want)
}

// FuzzWebhookPayload drives the webhook receiver with arbitrary bodies and signature headers. It must never
// panic; a body whose signature does not verify is refused with 401 before its JSON is looked at; a correctly
// signed body is never refused as unsigned; nothing unauthenticated is counted (pings); and no answer echoes
// the secret. sign replaces the header by the correct signature, so the fuzzer reaches the JSON routing.
func FuzzWebhookPayload(f *testing.F) {
	ping := []byte(`{"event":"ping","webhook":{"id":7},"sender":{"id":1}}`)
	job := []byte(`{"event":"create:job","webhook_id":7,"job":{"id":11,"task_id":3}}`)
	update := []byte(`{"event":"update:task","webhook_id":7,"task":{"id":3,"jobs":{"count":2}}}`)
	done := []byte(`{"event":"completed:request[create:task]","webhook_id":7,"request":{"id":"action=create&target=task&target_id=3","status":"finished","operation":{"type":"create:task","target":"task","task_id":3}}}`)
	f.Add(ping, "", true)
	f.Add(job, "", true)
	f.Add(update, "", true)
	f.Add(done, "", true)
	f.Add(job, fuzzSign(job), false)
	f.Add(job, strings.ToUpper(fuzzSign(job)), false)
	f.Add(job, "sha256=", false)
	f.Add(job, "sha1="+strings.TrimPrefix(fuzzSign(job), "sha256="), false)
	f.Add(append(bytes.Clone(job), ' '), fuzzSign(job), false)
	f.Add([]byte(`{"event":"create:job","webhook_id":8,"job":{"id":1,"task_id":1}}`), "", true)
	f.Add([]byte(`{"event":"completed:request[create:task]","webhook_id":7,"request":{}}`), "", true)
	f.Add([]byte(`{"event":"create:job","webhook_id":7,"job":{"id":-1,"task_id":0}}`), "", true)
	f.Add([]byte(`null`), "", true)
	f.Add([]byte(``), "", true)
	f.Add([]byte(`{"event":1}`), "", true)

	f.Fuzz(func(t *testing.T, body []byte, sig string, sign bool) {
		w, err := strategies.NewWebhook(strategies.DefaultParams())
		if err != nil {
			t.Fatal(err)
		}
		h := strategies.HookReceiver(w, []byte(fuzzSecret), fuzzHookID)
		if sign {
			sig = fuzzSign(body)
		}
		req := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Signature-256", sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		valid := fuzzSignedCorrectly(sig, body)
		switch {
		case rec.Code >= 500:
			t.Fatalf("status %d", rec.Code)
		case !valid && rec.Code != http.StatusUnauthorized && rec.Code != http.StatusRequestEntityTooLarge:
			t.Fatalf("unsigned body accepted with %d (header %q)", rec.Code, sig)
		case valid && rec.Code == http.StatusUnauthorized:
			t.Fatalf("correctly signed body refused as unsigned")
		case !valid && strategies.HookPings(w) != 0:
			t.Fatal("an unsigned ping was counted")
		}
		if strings.Contains(rec.Body.String(), fuzzSecret) {
			t.Fatal("answer echoes the secret")
		}
	})
}
