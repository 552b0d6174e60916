package bench

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestScheduleIsSeededAndBalanced(t *testing.T) {
	tests := []struct {
		name       string
		strategies []string
		qualities  []int
		tasks      int
	}{
		{"one strategy", []string{"poll"}, []int{70}, 5},
		{"many strategies", []string{"busyloop", "poll", "sdk", "cli", "ui", "backoff"}, []int{70}, 8},
		{"quality sweep", []string{"poll", "sdk"}, []int{10, 50, 90}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			cfg.Strategies, cfg.ImageQualities, cfg.TasksPerStrategy = tc.strategies, tc.qualities, tc.tasks
			a, b := Schedule(cfg), Schedule(cfg)
			if !slices.Equal(a, b) {
				t.Fatal("same seed gave different schedules")
			}
			if len(a) != cfg.Trials() {
				t.Fatalf("len %d, want %d", len(a), cfg.Trials())
			}
			cells := len(tc.strategies) * len(tc.qualities)
			counts := map[Slot]int{}
			for i, s := range a {
				if s.Seq != i {
					t.Fatalf("slot %d has seq %d", i, s.Seq)
				}
				counts[Slot{Strategy: s.Strategy, ImageQuality: s.ImageQuality}]++
				// Every prefix is balanced within one trial per cell.
				lo, hi := tc.tasks, 0
				for _, st := range tc.strategies {
					for _, q := range tc.qualities {
						n := counts[Slot{Strategy: st, ImageQuality: q}]
						lo, hi = min(lo, n), max(hi, n)
					}
				}
				if hi-lo > 1 {
					t.Fatalf("prefix of %d trials unbalanced: min %d max %d per cell", i+1, lo, hi)
				}
			}
			if len(counts) != cells {
				t.Fatalf("%d cells scheduled, want %d", len(counts), cells)
			}
			if cells > 2 {
				cfg.Seed++
				if slices.Equal(a, Schedule(cfg)) {
					t.Error("another seed gave the same schedule")
				}
				// Interleaved: the first strategy does not always go first in each round.
				firsts := map[string]bool{}
				for r := 0; r < tc.tasks; r++ {
					firsts[a[r*cells].Strategy] = true
				}
				if len(firsts) < 2 && len(tc.strategies) > 1 {
					t.Errorf("every round starts with the same strategy: %v", firsts)
				}
			}
		})
	}
}

func TestIntendedStart(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		rate float64
		seq  int
		want time.Duration
	}{
		{2, 0, 0}, {2, 1, 500 * time.Millisecond}, {2, 10, 5 * time.Second}, {0.5, 3, 6 * time.Second},
	}
	for _, tc := range tests {
		if got := IntendedStart(start, tc.rate, tc.seq).Sub(start); got != tc.want {
			t.Errorf("IntendedStart(rate %g, seq %d) = +%v, want +%v", tc.rate, tc.seq, got, tc.want)
		}
	}
}

// The shards of a run split its schedule exactly (every slot in one shard, seqs kept) and its concurrency
// (the remainder to the first shards, at least one worker each).
func TestShardSlotsSplitTheRun(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Strategies, cfg.TasksPerStrategy, cfg.ShardCount = []string{"poll", "sdk", "webhook"}, 6, 4
	all := Schedule(cfg)
	seen := map[int]int{}
	var sizes, workers []int
	for i := range cfg.ShardCount {
		c := cfg
		c.ShardIndex = i
		share := ShardSlots(c, all)
		for _, s := range share {
			seen[s.Seq]++
			if s.Seq%4 != i || s != all[s.Seq] {
				t.Errorf("shard %d holds slot %+v", i, s)
			}
		}
		sizes = append(sizes, len(share))
		if len(share) != c.ShardTrials() {
			t.Errorf("shard %d: %d slots, ShardTrials %d", i, len(share), c.ShardTrials())
		}
		for _, conc := range []int{6, 2} {
			c.Concurrency = conc
			workers = append(workers, c.ShardConcurrency())
		}
	}
	if len(seen) != len(all) || !slices.Equal(sizes, []int{5, 5, 4, 4}) || !slices.Equal(workers, []int{2, 1, 2, 1, 1, 1, 1, 1}) {
		t.Errorf("%d of %d slots covered, sizes %v, workers (6 and 2 split) %v", len(seen), len(all), sizes, workers)
	}
}

// Batches holds each cell's slots in schedule order, Batch at a time with the last one smaller, never mixing
// cells; the batches of the shards of a run start at distinct seqs, which are their ids.
func TestBatches(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Strategies, cfg.ImageQualities, cfg.TasksPerStrategy, cfg.Batch = []string{"poll", "project-poll"}, []int{50, 90}, 7, 3
	slots := Schedule(cfg)
	batches := Batches(cfg, slots)
	if len(batches) != cfg.Batches() || cfg.Batches() != 4*3 {
		t.Fatalf("%d batches, Batches() %d", len(batches), cfg.Batches())
	}
	seen := map[int]bool{}
	sizes := map[[2]any][]int{}
	for _, b := range batches {
		c := [2]any{b[0].Strategy, b[0].ImageQuality}
		for i, s := range b {
			if s.Strategy != b[0].Strategy || s.ImageQuality != b[0].ImageQuality || seen[s.Seq] || (i > 0 && s.Seq <= b[i-1].Seq) {
				t.Fatalf("batch %v mixes cells, repeats or reorders slots", b)
			}
			seen[s.Seq] = true
		}
		sizes[c] = append(sizes[c], len(b))
	}
	for c, sz := range sizes {
		if fmt.Sprint(sz) != "[3 3 1]" {
			t.Errorf("cell %v: batch sizes %v, want [3 3 1]", c, sz)
		}
	}
	if len(seen) != len(slots) {
		t.Errorf("%d of %d slots in batches", len(seen), len(slots))
	}
	ids := map[int]bool{}
	for i := range 2 {
		sc := cfg
		sc.ShardIndex, sc.ShardCount = i, 2
		for _, b := range Batches(sc, ShardSlots(sc, slots)) {
			if ids[b[0].Seq] {
				t.Errorf("two shards have a batch starting at seq %d", b[0].Seq)
			}
			ids[b[0].Seq] = true
		}
	}
}
