package cvatsim

import (
	"net/http/httptest"
	"testing"
	"time"
)

// A long run against one emulator must not keep what it deleted: a deleted task's bytes go even though its
// request and timeline still point at it, and expired requests are dropped without anyone asking for them.
func TestDeletedTasksAndExpiredRequestsAreReleased(t *testing.T) {
	s, err := New(Options{Profile: Profile{Name: "instant", APISlots: 2}, RequestTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tk := &task{id: 7, files: []clientFile{{name: "a.png", data: make([]byte, 1<<20)}},
		frames: []frame{{name: "a.png", data: make([]byte, 1<<20)}}, tus: map[string]*tusUpload{}}
	s.mu.Lock()
	s.tasks[tk.id] = tk
	s.chunks[chunkKey{task: 7, job: 1}] = &chunkEntry{data: make([]byte, 1<<20)}
	s.requests["rq-7"] = &request{id: "rq-7", task: tk, status: stFailed}
	s.deleteTaskLocked(tk, &call{r: httptest.NewRequest("DELETE", "/api/tasks/7", nil)}, false)
	s.mu.Unlock()
	if tk.files != nil || tk.frames != nil || tk.tus != nil || len(s.chunks) != 0 {
		t.Errorf("deleted task keeps files %d, frames %d, chunks %d", len(tk.files), len(tk.frames), len(s.chunks))
	}

	old := s.now().Add(-time.Hour)
	s.mu.Lock()
	s.requests["done"] = &request{id: "done", status: stFinished, finished: old}
	s.requests["queued"] = &request{id: "queued", status: stQueued}
	s.sweepRequestsLocked()
	_, done := s.requests["done"]
	_, queued := s.requests["queued"]
	_, failed := s.requests["rq-7"]
	s.mu.Unlock()
	if done || !queued || !failed {
		t.Errorf("after the sweep: expired kept %v, queued kept %v, failed kept %v; want false, true, true", done, queued, failed)
	}
}

// The ground truth of deleted tasks is kept for the last keptDeletedTimelines of them only.
func TestDeletedTimelinesBounded(t *testing.T) {
	s, err := New(Options{Profile: Profile{Name: "instant"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := &call{r: httptest.NewRequest("DELETE", "/api/tasks/1", nil)}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := keptDeletedTimelines + 10
	for id := 1; id <= n; id++ {
		tk := &task{id: id, labels: []string{"a"}, jobIDs: []int{id}}
		s.tasks[id], s.tls[id] = tk, &timeline{}
		s.deleteTaskLocked(tk, c, false)
		if tk.labels != nil || tk.jobIDs != nil {
			t.Fatalf("deleted task %d keeps labels %v, jobs %v", id, tk.labels, tk.jobIDs)
		}
	}
	if len(s.tls) != keptDeletedTimelines {
		t.Errorf("%d timelines kept, want %d", len(s.tls), keptDeletedTimelines)
	}
	for _, id := range []int{1, 10} {
		if _, ok := s.tls[id]; ok {
			t.Errorf("timeline of task %d, among the oldest deleted, kept", id)
		}
	}
	for _, id := range []int{11, n} {
		if _, ok := s.tls[id]; !ok {
			t.Errorf("timeline of task %d, among the last deleted, dropped", id)
		}
	}
}
