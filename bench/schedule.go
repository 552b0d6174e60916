package bench

import (
	"math/rand/v2"
	"time"

	"github.com/cvatbench/cvatbench/bench/record"
)

// Slot is one scheduled trial.
type Slot struct {
	Seq          int
	Strategy     string
	ImageQuality int
	SegmentSize  int
}

// Schedule orders the trials of cfg: in rounds, each round holding every (strategy, image quality, segment size) cell once
// in a seeded random order. So every strategy gets its share of warm-up, busy and quiet minutes, and any
// prefix of the schedule (an interrupted run) is balanced to within one trial per cell.
func Schedule(cfg Config) []Slot {
	type cell struct {
		strategy string
		quality  int
		segment  int
	}
	var cells []cell
	segments := cfg.SegmentSizes
	if len(segments) == 0 {
		segments = []int{record.DefaultSegmentSize}
	}
	for _, s := range cfg.Strategies {
		for _, q := range cfg.ImageQualities {
			for _, sg := range segments {
				cells = append(cells, cell{s, q, sg})
			}
		}
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5c4ed01e)) // second word: a fixed stream for schedules
	slots := make([]Slot, 0, len(cells)*cfg.TasksPerStrategy)
	round := make([]cell, len(cells))
	for range cfg.TasksPerStrategy {
		copy(round, cells)
		rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		for _, c := range round {
			slots = append(slots, Slot{Seq: len(slots), Strategy: c.strategy, ImageQuality: c.quality, SegmentSize: c.segment})
		}
	}
	return slots
}

// ShardSlots keeps the slots of cfg's shard: those whose seq is the shard index modulo the shard count. Seqs
// stay the whole run's, so the shards' trials merge into one run without renumbering, and in open loop each
// shard's trials keep their intended times: N shards at the run's rate start rate/N each, phase-shifted.
func ShardSlots(cfg Config, slots []Slot) []Slot {
	if !cfg.Sharded() {
		return slots
	}
	out := make([]Slot, 0, cfg.ShardTrials())
	for _, s := range slots {
		if cfg.InShard(s.Seq) {
			out = append(out, s)
		}
	}
	return out
}

// IntendedStart is when an open-loop run at rate trials/s means to start trial seq: a constant rate, so the
// latency of a trial that starts late because the client was busy counts from when it should have started.
func IntendedStart(start time.Time, rate float64, seq int) time.Time {
	return start.Add(time.Duration(float64(seq) / rate * float64(time.Second)))
}

// Batches groups slots into the batches of a batch run (Config.Batch): the slots of each (strategy, image
// quality, segment size) cell in schedule order, Batch at a time, the last one of a cell smaller. A batch
// starts in the order its first slot comes in the schedule, so batches of all cells interleave as trials do.
func Batches(cfg Config, slots []Slot) [][]Slot {
	if cfg.Batch <= 0 {
		return nil
	}
	type cell struct {
		strategy         string
		quality, segment int
	}
	open := map[cell]int{} // cell -> index of its filling batch in out
	var out [][]Slot
	for _, s := range slots {
		c := cell{s.Strategy, s.ImageQuality, s.SegmentSize}
		i, ok := open[c]
		if !ok || len(out[i]) == cfg.Batch {
			out = append(out, make([]Slot, 0, cfg.Batch))
			i = len(out) - 1
			open[c] = i
		}
		out[i] = append(out[i], s)
	}
	return out
}
