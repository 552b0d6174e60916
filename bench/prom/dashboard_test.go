package prom_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cvatbench/cvatbench/bench/prom"
)

const (
	dashboardPath  = "../../deploy/grafana/cvatbench.json"
	prometheusPath = "../../deploy/prometheus/prometheus.yml"
)

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashTarget struct {
	Expr       string `json:"expr"`
	Format     string `json:"format"`
	RefID      string `json:"refId"`
	Datasource dsRef  `json:"datasource"`
}

type dashPanel struct {
	ID          int          `json:"id"`
	Type        string       `json:"type"`
	Title       string       `json:"title"`
	Datasource  dsRef        `json:"datasource"`
	Targets     []dashTarget `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Requires []struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"__requires"`
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	Tags          []string `json:"tags"`
	SchemaVersion int      `json:"schemaVersion"`
	Refresh       string   `json:"refresh"`
	Time          struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
			Multi      bool   `json:"multi"`
			IncludeAll bool   `json:"includeAll"`
			AllValue   string `json:"allValue"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	return d
}

// exprs returns every PromQL expression of the dashboard: panel targets, variable queries, annotations.
func (d dashboard) exprs() []string {
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, a.Expr)
		}
	}
	return out
}

func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs = %+v, want one DS_PROMETHEUS prometheus input", d.Inputs)
	}
	var required []string
	for _, r := range d.Requires {
		required = append(required, r.Type+":"+r.ID)
	}
	for _, want := range []string{"grafana:grafana", "datasource:prometheus"} {
		if !slices.Contains(required, want) {
			t.Errorf("__requires lacks %s", want)
		}
	}
	if d.UID != "cvatbench-time-to-jobs" { // stable: links and provisioning refer to it
		t.Errorf("uid = %q", d.UID)
	}
	if d.Title == "" || len(d.Tags) == 0 || d.SchemaVersion == 0 || d.Refresh == "" || d.Time.From == "" {
		t.Errorf("missing top-level field: title %q tags %v schemaVersion %d refresh %q time %+v",
			d.Title, d.Tags, d.SchemaVersion, d.Refresh, d.Time)
	}
	if len(d.Annotations.List) == 0 {
		t.Error("no annotations")
	}

	vars := map[string]int{}
	for i, v := range d.Templating.List {
		vars[v.Name] = i
	}
	for _, name := range []string{"datasource", "target", "strategy", "result"} {
		if _, ok := vars[name]; !ok {
			t.Errorf("variable %s missing", name)
		}
	}
	if i, ok := vars["strategy"]; ok {
		v := d.Templating.List[i]
		if v.Definition != "label_values(cvatbench_tasks_total, strategy)" || !v.Multi || !v.IncludeAll || v.AllValue != ".*" {
			t.Errorf("strategy variable = %+v", v)
		}
	}
	if i, ok := vars["datasource"]; ok && d.Templating.List[i].Type != "datasource" {
		t.Errorf("datasource variable has type %q", d.Templating.List[i].Type)
	}

	allowed := []string{"timeseries", "heatmap", "stat", "bargauge", "table"}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if !slices.Contains(allowed, p.Type) {
			t.Errorf("panel %q has type %q, want one of %v", p.Title, p.Type, allowed)
		}
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("panel %q has no fieldConfig.defaults.unit", p.Title)
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q datasource %+v, want the datasource variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q target %s datasource %+v", p.Title, tg.RefID, tg.Datasource)
			}
			if p.Type == "heatmap" && tg.Format != "heatmap" {
				t.Errorf("heatmap %q target format %q, want heatmap", p.Title, tg.Format)
			}
		}
	}
	for _, e := range d.exprs() {
		if regexp.MustCompile(`\bjob\s*(=|!=|=~|!~)`).MatchString(e) {
			t.Errorf("expression pins job: %s", e)
		}
	}

	// The required percentile panel, written exactly as LIBRARIES.md shows it.
	for _, q := range []string{"0.5", "0.9", "0.99"} {
		want := "histogram_quantile(" + q + ", sum by (le, strategy) (rate(cvatbench_time_to_jobs_seconds_bucket{"
		if !slices.ContainsFunc(d.exprs(), func(e string) bool { return strings.HasPrefix(e, want) }) {
			t.Errorf("no expression starts with %s", want)
		}
	}
}

// TestDashboardMetricsExist checks every cvatbench_* name in the dashboard against what the registries
// export: a renamed metric must not silently empty a panel.
func TestDashboardMetricsExist(t *testing.T) {
	known := map[string]bool{}
	add := func(g prometheus.Gatherer) {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			n := mf.GetName()
			known[n] = true
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM:
				known[n+"_bucket"], known[n+"_sum"], known[n+"_count"] = true, true, true
			case dto.MetricType_SUMMARY:
				known[n+"_sum"], known[n+"_count"] = true, true
			}
		}
	}
	live := prometheus.NewPedanticRegistry()
	m, err := prom.New(live, testBuild)
	if err != nil {
		t.Fatal(err)
	}
	drive(m) // label values appear with their first observation
	add(live)
	pushed, err := prom.NewRun(sampleRecords(), prom.RunInfo{Success: true, CompletedAt: time.Unix(1, 0)}, testBuild).Registry("poll")
	if err != nil {
		t.Fatal(err)
	}
	add(pushed)

	d := loadDashboard(t)
	var all []string
	all = append(all, d.exprs()...)
	for _, v := range d.Templating.List {
		all = append(all, v.Definition)
	}
	name := regexp.MustCompile(`\bcvatbench_[a-z0-9_]+`)
	used := 0
	for _, e := range all {
		for _, n := range name.FindAllString(e, -1) {
			used++
			if !known[n] {
				t.Errorf("dashboard uses %s, which no registry exports (in %s)", n, e)
			}
		}
	}
	if used == 0 {
		t.Fatal("no cvatbench metric found in the dashboard")
	}
}

// TestPrometheusConfig checks the shipped scrape config for what the dashboard and native histograms need.
// (It targets Prometheus >= 3.9, which the integration test's 2.42 cannot load, hence a text check.)
func TestPrometheusConfig(t *testing.T) {
	b, err := os.ReadFile(prometheusPath)
	if err != nil {
		t.Fatal(err)
	}
	jobs := strings.Split(string(b), "- job_name:")
	byName := map[string]string{}
	for _, j := range jobs[1:] {
		name, _, _ := strings.Cut(strings.TrimSpace(j), "\n")
		byName[strings.TrimSpace(name)] = j
	}
	for _, tc := range []struct{ job, want string }{
		{"cvatbench", "scrape_protocols: [PrometheusProto,"},
		{"cvatbench", "always_scrape_classic_histograms: true"},
		{"cvatbench", "scrape_native_histograms: true"},
		{"pushgateway", "honor_labels: true"},
	} {
		if !strings.Contains(byName[tc.job], tc.want) {
			t.Errorf("job %s lacks %q", tc.job, tc.want)
		}
	}
}
