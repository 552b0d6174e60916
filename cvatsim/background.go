package cvatsim

import (
	"math"
	"time"
)

// backgroundUser owns the background creations: another user of the server, so that
// ONE_RUNNING_JOB_IN_QUEUE_PER_USER does not serialize them with ours.
var backgroundUser = &user{id: -1, username: "background"}

// maxBackgroundQueued bounds the background requests waiting at once; beyond it an arrival is dropped, so a
// profile near saturation cannot grow memory without bound.
const maxBackgroundQueued = 1000

// scheduleBackground arms the next arrival of the profile's background load (a Poisson stream).
func (s *Server) scheduleBackground() {
	rate := s.prof.Background.ArrivalsPerSecond
	if rate <= 0 {
		return
	}
	gap := time.Duration(-math.Log(1-s.bgRng.float64()) / rate * float64(time.Second))
	s.afterFunc(gap, func() {
		s.enqueueBackground()
		s.scheduleBackground()
	})
}

// enqueueBackground puts one background creation at the end of the import queue.
func (s *Server) enqueueBackground() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	queued := 0
	for _, rq := range s.queue {
		if rq.background {
			queued++
		}
	}
	if queued >= maxBackgroundQueued {
		return
	}
	s.reqSeq++
	s.queue = append(s.queue, &request{owner: backgroundUser, status: stQueued, created: s.now(), seq: s.reqSeq, background: true})
	s.queueCond.Broadcast()
}

// processBackground holds a worker for one background creation: the pick-up, then its service time.
func (s *Server) processBackground(rq *request) {
	if s.wait(s.ctx, s.prof.PickUp.sample(s.rng)) != nil {
		return
	}
	// Service is the worker time as observed, sharing included: not stretched again, so that the load's
	// utilization is what Profile.Validate computes. It still slows the creations that start meanwhile.
	s.startProcessing()
	defer s.endProcessing()
	_ = s.wait(s.ctx, s.prof.Background.Service.sample(s.rng))
}
