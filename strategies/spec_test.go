package strategies_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/strategies"
)

func TestParseSpecCanonicalSpelling(t *testing.T) {
	base := strategies.DefaultParams()
	for _, tc := range []struct {
		spec, canonical string
		check           func(p strategies.Params) bool
	}{
		{"poll", "poll", func(p strategies.Params) bool { return p == base }},
		{"poll:interval=0.025s", "poll:interval=25ms", func(p strategies.Params) bool { return p.PollInterval == 25*time.Millisecond }},
		{"backoff:max=2s:initial=50ms:factor=1.50", "backoff:initial=50ms:factor=1.5:max=2s", func(p strategies.Params) bool {
			return p.BackoffInitial == 50*time.Millisecond && p.BackoffFactor == 1.5 && p.BackoffMax == 2*time.Second &&
				p.BackoffJitter == base.BackoffJitter
		}},
		{"sdk:period=1000ms", "sdk:period=1s", func(p strategies.Params) bool { return p.SDKPeriod == time.Second && p.CLIPeriod == base.CLIPeriod }},
		{"cli:period=500ms", "cli:period=500ms", func(p strategies.Params) bool { return p.CLIPeriod == 500*time.Millisecond }},
		{"webhook:safety=1s", "webhook:safety=1s", func(p strategies.Params) bool { return p.SafetyPoll == time.Second }},
		{"ui:seed=7", "ui:seed=7", func(p strategies.Params) bool { return p.Seed == 7 }},
	} {
		sp, err := strategies.ParseSpec(tc.spec, base)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tc.spec, err)
			continue
		}
		if sp.Canonical != tc.canonical || !tc.check(sp.Params) {
			t.Errorf("ParseSpec(%q) = %q with %+v, want %q", tc.spec, sp.Canonical, sp.Params, tc.canonical)
		}
		// The canonical spelling is a fixed point.
		if again, err := strategies.ParseSpec(sp.Canonical, base); err != nil || again != sp {
			t.Errorf("ParseSpec(%q) = %+v, %v; want the same spec", sp.Canonical, again, err)
		}
	}
}

func TestParseSpecEffectiveIncludesDefaults(t *testing.T) {
	base := strategies.DefaultParams()
	bare, _ := strategies.ParseSpec("poll", base)
	explicit, _ := strategies.ParseSpec("poll:interval=100ms", base)
	other, _ := strategies.ParseSpec("poll:interval=25ms", base)
	if bare.Effective != explicit.Effective || bare.Canonical == explicit.Canonical {
		t.Errorf("poll (%q) and poll:interval=100ms (%q) must share Effective and differ in Canonical", bare.Effective, explicit.Effective)
	}
	if other.Effective == bare.Effective {
		t.Errorf("poll:interval=25ms has the bare poll's Effective %q", bare.Effective)
	}
}

func TestParseSpecRejects(t *testing.T) {
	for spec, want := range map[string]string{
		"nap":                          `unknown strategy "nap"`,
		"":                             `unknown strategy ""`,
		"poll:":                        `"" is not key=value`,
		"poll:interval":                `"interval" is not key=value`,
		"poll:interval=":               `is not key=value`,
		"poll:=1s":                     `is not key=value`,
		"poll:period=1s":               `poll has no parameter "period" (valid: interval)`,
		"busyloop:interval=1s":         `busyloop has no parameter "interval" (it takes none)`,
		"poll:interval=1s:interval=2s": "interval given twice",
		"poll:interval=soon":           "interval=soon: not a duration",
		"backoff:factor=x":             "factor=x: not a number",
		"ui:seed=1.5":                  "seed=1.5: not an integer",
	} {
		_, err := strategies.ParseSpec(spec, strategies.DefaultParams())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSpec(%q) = %v, want an error containing %q", spec, err, want)
		}
	}
}

func TestNewRejectsSpecValuesOutOfRange(t *testing.T) {
	for spec, want := range map[string]string{
		"poll:interval=-25ms":       "strategy poll:interval=-25ms: poll interval must be positive",
		"poll:interval=0s":          "must be positive",
		"backoff:factor=0.5":        "factor must be at least 1",
		"backoff:initial=3s:max=2s": "below backoff initial",
		"backoff:jitter=1":          "jitter must be in [0, 1)",
		"sdk:period=-1s":            "must be positive",
		"webhook:safety=0s":         "positive",
	} {
		_, err := strategies.New(spec, strategies.DefaultParams())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%q) = %v, want an error containing %q", spec, err, want)
		}
	}
}

func TestEveryRegisteredStrategyParsesBare(t *testing.T) {
	for _, name := range strategies.Names() {
		sp, err := strategies.ParseSpec(name, strategies.DefaultParams())
		if err != nil || sp.Canonical != name || strategies.BaseName(name+":x=1") != name {
			t.Errorf("ParseSpec(%q) = %+v, %v", name, sp, err)
		}
	}
	if got := slices.Sorted(maps.Keys(strategies.SpecKeysForTest())); !slices.Equal(got, slices.Sorted(slices.Values(strategies.Names()))) {
		t.Errorf("strategies with spec keys %v, registered %v", got, strategies.Names())
	}
}

// The parameters of a spec reach the strategy New builds: its calls fall on the spec's schedule, not the
// base Params'.
func TestNewAppliesSpecParameters(t *testing.T) {
	for spec, want := range map[string][]string{
		"poll:interval=250ms": {"jobs(page=0,size=-1,sort=id)@0s", "jobs(page=0,size=-1,sort=id)@250ms",
			"jobs(page=0,size=-1,sort=id)@500ms", "jobs(page=0,size=-1,sort=id)@750ms"},
		"backoff:initial=50ms:factor=3:max=1s:jitter=0": {"rq@0s", "rq@50ms", "rq@200ms", "rq@650ms",
			"jobs(page=0,size=-1,sort=id)@650ms"},
	} {
		clk := newAutoClock()
		api := newFakeAPI(t, clk)
		api.visibleAt, api.finishedAt = 600*ms, 600*ms
		s, err := strategies.New(spec, strategies.DefaultParams())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Wait(t.Context(), api, clk, strategies.Trial{TaskID: 42, RqID: api.rqID}); err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if got := api.log(); !slices.Equal(got, want) {
			t.Errorf("%s: calls %v, want %v", spec, got, want)
		}
	}
}
