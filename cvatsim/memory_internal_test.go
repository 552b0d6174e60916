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
