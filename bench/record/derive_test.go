package record

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 27, 0, 15, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestEstimateOffset(t *testing.T) {
	tests := []struct {
		name                string
		created, sent, recv time.Time
		wantOffset, wantErr time.Duration
		ok                  bool
	}{
		{"server clock equal, created mid-call", at(150), at(100), at(200), 0, 50 * time.Millisecond, true},
		{"server 2 s ahead", at(2150), at(100), at(200), 2 * time.Second, 50 * time.Millisecond, true},
		{"server 1 s behind", at(-850), at(100), at(200), -time.Second, 50 * time.Millisecond, true},
		{"created at the 202", at(200), at(100), at(200), 50 * time.Millisecond, 50 * time.Millisecond, true},
		{"zero-length call", at(500), at(100), at(100), 400 * time.Millisecond, 0, true},
		{"inverted window", at(150), at(200), at(100), 0, 0, false},
		{"no created date", time.Time{}, at(100), at(200), 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			off, bound, ok := EstimateOffset(tc.created, tc.sent, tc.recv)
			if ok != tc.ok || off != tc.wantOffset || bound != tc.wantErr {
				t.Fatalf("EstimateOffset = %v ±%v %v, want %v ±%v %v", off, bound, ok, tc.wantOffset, tc.wantErr, tc.ok)
			}
			if !ok {
				return
			}
			// The true offset (created − any instant in the call) lies within the bound.
			for _, local := range []time.Time{tc.sent, tc.recv} {
				if d := tc.created.Sub(local) - off; d > bound || d < -bound {
					t.Errorf("true offset at %v off by %v, beyond ±%v", local, d, bound)
				}
			}
			if got := ToLocal(tc.created, off); got.Sub(tc.sent) < 0 || got.After(tc.recv) {
				t.Errorf("created mapped to local %v, outside the call", got)
			}
		})
	}
}

func tp(ms int) *time.Time { v := at(ms); return &v }

func TestDerive(t *testing.T) {
	tests := []struct {
		name string
		rec  Trial
		want Trial
	}{
		{
			name: "closed loop counts from create sent",
			rec: Trial{CreateSentAt: tp(0), JobsObtainedAt: tp(1500), JobsVisibleAt: tp(1200),
				RequestCreatedAt: tp(300), RequestStartedAt: tp(400), RequestFinishedAt: tp(1250)},
			want: Trial{EndToEndMs: floatPtr(1500), DetectionDelayMs: floatPtr(300),
				ServerQueueMs: floatPtr(100), ServerProcessingMs: floatPtr(850)},
		},
		{
			name: "open loop counts from intended start and records the lag",
			rec:  Trial{IntendedAt: tp(0), CreateSentAt: tp(700), JobsObtainedAt: tp(1500)},
			want: Trial{EndToEndMs: floatPtr(1500), ScheduleLagMs: floatPtr(700)},
		},
		{
			name: "failed trial has no end-to-end",
			rec:  Trial{CreateSentAt: tp(0), RequestCreatedAt: tp(300)},
			want: Trial{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.rec
			Derive(&got)
			want := tc.rec
			want.EndToEndMs, want.DetectionDelayMs, want.ScheduleLagMs = tc.want.EndToEndMs, tc.want.DetectionDelayMs, tc.want.ScheduleLagMs
			want.ServerQueueMs, want.ServerProcessingMs = tc.want.ServerQueueMs, tc.want.ServerProcessingMs
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Derive (-want +got):\n%s", diff)
			}
		})
	}
}
