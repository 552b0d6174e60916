package strategies

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A strategy spec names a strategy and overrides some of its parameters: NAME[:key=value]..., such as
// "poll:interval=25ms" or "backoff:initial=50ms:factor=1.5:max=2s". A bare name takes every parameter from
// the run's Params (the --poll-interval family of flags). Each spec is its own row of a report, named by its
// canonical spelling, so one run can hold a whole parameter sweep.

// specKey is one parameter a spec may set.
type specKey struct {
	name  string
	parse func(p *Params, value string) error
	show  func(p Params) string
}

func durationKey(name string, field func(*Params) *time.Duration) specKey {
	return specKey{
		name: name,
		parse: func(p *Params, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s=%s: not a duration like 250ms or 2s", name, v)
			}
			*field(p) = d
			return nil
		},
		show: func(p Params) string { return field(&p).String() },
	}
}

func floatKey(name string, field func(*Params) *float64) specKey {
	return specKey{
		name: name,
		parse: func(p *Params, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%s=%s: not a number", name, v)
			}
			*field(p) = f
			return nil
		},
		show: func(p Params) string { return strconv.FormatFloat(*field(&p), 'g', -1, 64) },
	}
}

func intKey(name string, field func(*Params) *int64) specKey {
	return specKey{
		name: name,
		parse: func(p *Params, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%s=%s: not an integer", name, v)
			}
			*field(p) = n
			return nil
		},
		show: func(p Params) string { return strconv.FormatInt(*field(&p), 10) },
	}
}

var (
	pollInterval = durationKey("interval", func(p *Params) *time.Duration { return &p.PollInterval })
	seedKey      = intKey("seed", func(p *Params) *int64 { return &p.Seed })
)

// specKeys lists, per strategy, the parameters a spec may set, in the order of the canonical spelling.
var specKeys = map[string][]specKey{
	"busyloop": nil,
	"poll":     {pollInterval},
	"sdk":      {durationKey("period", func(p *Params) *time.Duration { return &p.SDKPeriod })},
	"cli":      {durationKey("period", func(p *Params) *time.Duration { return &p.CLIPeriod })},
	"ui":       {seedKey},
	"backoff": {
		durationKey("initial", func(p *Params) *time.Duration { return &p.BackoffInitial }),
		floatKey("factor", func(p *Params) *float64 { return &p.BackoffFactor }),
		durationKey("max", func(p *Params) *time.Duration { return &p.BackoffMax }),
		floatKey("jitter", func(p *Params) *float64 { return &p.BackoffJitter }),
		seedKey,
	},
	"webhook":         {durationKey("safety", func(p *Params) *time.Duration { return &p.SafetyPoll })},
	"adaptive":        nil,
	"prealloc":        nil,
	"project-poll":    {pollInterval},
	"project-webhook": {durationKey("safety", func(p *Params) *time.Duration { return &p.SafetyPoll })},
}

// Spec is a parsed strategy spec.
type Spec struct {
	Name      string // the registered strategy, e.g. "poll"
	Canonical string // the spec's canonical spelling: its row name, e.g. "poll:interval=25ms"
	// Effective spells out every parameter the strategy reads, defaults included: two specs with the same
	// Effective are the same configuration.
	Effective string
	Params    Params // the run's Params with the spec's overrides applied
}

// ParseSpec parses NAME[:key=value]... against base, the run's parameters. It checks the syntax, the name
// and the keys; whether the values are in range is the strategy constructor's to say (New).
func ParseSpec(spec string, base Params) (Spec, error) {
	name, rest, _ := strings.Cut(spec, ":")
	keys, ok := specKeys[name]
	if !ok {
		return Spec{}, fmt.Errorf("unknown strategy %q (known: %s)", name, strings.Join(names, ", "))
	}
	s := Spec{Name: name, Params: base}
	given := map[string]bool{}
	if rest != "" || strings.HasSuffix(spec, ":") {
		for _, kv := range strings.Split(rest, ":") {
			k, v, found := strings.Cut(kv, "=")
			i := slices.IndexFunc(keys, func(sk specKey) bool { return sk.name == k })
			switch {
			case !found || k == "" || v == "":
				return Spec{}, fmt.Errorf("strategy spec %q: %q is not key=value", spec, kv)
			case i < 0:
				return Spec{}, fmt.Errorf("strategy spec %q: %s has no parameter %q (%s)", spec, name, k, keyList(keys))
			case given[k]:
				return Spec{}, fmt.Errorf("strategy spec %q: %s given twice", spec, k)
			}
			if err := keys[i].parse(&s.Params, v); err != nil {
				return Spec{}, fmt.Errorf("strategy spec %q: %w", spec, err)
			}
			given[k] = true
		}
	}
	canonical, effective := []string{name}, []string{name}
	for _, k := range keys {
		kv := k.name + "=" + k.show(s.Params)
		if given[k.name] {
			canonical = append(canonical, kv)
		}
		effective = append(effective, kv)
	}
	s.Canonical, s.Effective = strings.Join(canonical, ":"), strings.Join(effective, ":")
	return s, nil
}

// BaseName is the registered strategy a spec names ("poll" for "poll:interval=25ms").
func BaseName(spec string) string {
	name, _, _ := strings.Cut(spec, ":")
	return name
}

func keyList(keys []specKey) string {
	if len(keys) == 0 {
		return "it takes none"
	}
	ns := make([]string, len(keys))
	for i, k := range keys {
		ns[i] = k.name
	}
	return "valid: " + strings.Join(ns, ", ")
}
