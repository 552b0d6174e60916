// Package validate checks deploy/kubernetes without a cluster: every manifest decodes strictly into the
// Kubernetes API types (an unknown or misspelt field fails), and the manifests name the image, the Secret,
// the ConfigMap and the volume consistently. It is a module of its own so that k8s.io/api stays out of the
// product's dependencies; `make test` runs it (make kubecheck).
package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

type manifests struct {
	jobs        map[string]*batchv1.Job
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	claims      map[string]*corev1.PersistentVolumeClaim
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
}

// strict decodes one YAML document into v, refusing fields the type does not have.
func strict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func load(t *testing.T) manifests {
	t.Helper()
	m := manifests{jobs: map[string]*batchv1.Job{}, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		claims: map[string]*corev1.PersistentVolumeClaim{}, deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{}}
	files, err := filepath.Glob("../*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s #%d: %v", f, i, err)
			}
			decode, known := m.decoders()[head.APIVersion+" "+head.Kind]
			if !known {
				t.Fatalf("%s #%d: kind %s %s is not one the test knows", f, i, head.APIVersion, head.Kind)
			}
			name, err := decode([]byte(doc))
			if err != nil {
				t.Fatalf("%s #%d (%s): %v", f, i, head.Kind, err)
			}
			if name == "" {
				t.Errorf("%s #%d (%s) has no name", f, i, head.Kind)
			}
		}
	}
	return m
}

// decoders decode one document of each known kind strictly into m, returning its name.
func (m manifests) decoders() map[string]func([]byte) (string, error) {
	return map[string]func([]byte) (string, error){
		"batch/v1 Job":             into(m.jobs),
		"v1 ConfigMap":             into(m.configMaps),
		"v1 Secret":                into(m.secrets),
		"v1 PersistentVolumeClaim": into(m.claims),
		"apps/v1 Deployment":       into(m.deployments),
		"v1 Service":               into(m.services),
	}
}

// object is what every API type has: a name in its ObjectMeta.
type object interface{ GetName() string }

// into decodes a document strictly into a new T and files it by name.
func into[T any, P interface {
	*T
	object
}](byName map[string]P) func([]byte) (string, error) {
	return func(doc []byte) (string, error) {
		v := P(new(T))
		if err := strict(doc, v); err != nil {
			return "", err
		}
		byName[v.GetName()] = v
		return v.GetName(), nil
	}
}

func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	if err := strict([]byte("apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec: {completionMod: Indexed}\n"), &batchv1.Job{}); err == nil {
		t.Fatal("a misspelt field decoded: the check would prove nothing")
	}
}

func TestManifestsAreConsistent(t *testing.T) {
	m := load(t)
	shards, merge := m.jobs["cvatbench-shards"], m.jobs["cvatbench-merge"]
	cm := m.configMaps["cvatbench-run"]
	if shards == nil || merge == nil || cm == nil {
		t.Fatalf("want the jobs cvatbench-shards and cvatbench-merge and the ConfigMap cvatbench-run; have %v, %v",
			mapsKeys(m.jobs), mapsKeys(m.configMaps))
	}
	n, err := strconv.Atoi(cm.Data["SHARDS"])
	if err != nil || n < 1 {
		t.Fatalf("SHARDS %q", cm.Data["SHARDS"])
	}
	s := shards.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion || s.Completions == nil || int(*s.Completions) != n ||
		s.Parallelism == nil || int(*s.Parallelism) != n {
		t.Errorf("shards job: completion mode %v, completions %v, parallelism %v; want Indexed, %d, %d", s.CompletionMode, s.Completions, s.Parallelism, n, n)
	}
	shard := shards.Spec.Template.Spec.Containers[0]
	if !slices.Contains(shard.Args, "--shard=$(JOB_COMPLETION_INDEX)/$(SHARDS)") || !slices.Contains(shard.Args, "--run-id=$(RUN_ID)") {
		t.Errorf("shard args %q do not map the completion index to --shard", shard.Args)
	}
	images := map[string]bool{}
	for _, j := range []*batchv1.Job{shards, merge} {
		ps := j.Spec.Template.Spec
		for _, c := range ps.Containers {
			images[c.Image] = true
			refsConfig := false
			for _, e := range c.EnvFrom {
				if e.ConfigMapRef != nil {
					refsConfig = refsConfig || e.ConfigMapRef.Name == cm.Name
					if m.configMaps[e.ConfigMapRef.Name] == nil {
						t.Errorf("%s reads ConfigMap %s, which no manifest defines", j.Name, e.ConfigMapRef.Name)
					}
				}
			}
			if !refsConfig {
				t.Errorf("%s does not read the run's ConfigMap", j.Name)
			}
			for _, e := range c.Env {
				if strings.Contains(strings.ToLower(e.Name), "token") || strings.Contains(strings.ToLower(e.Name), "password") {
					if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
						t.Errorf("%s: %s is not read from a Secret", j.Name, e.Name)
						continue
					}
					ref := e.ValueFrom.SecretKeyRef
					sec := m.secrets[ref.Name]
					if sec == nil || sec.StringData[ref.Key] == "" {
						t.Errorf("%s: %s reads %s/%s, which secret.yaml does not define", j.Name, e.Name, ref.Name, ref.Key)
					}
				}
			}
			for _, vm := range c.VolumeMounts {
				if vm.MountPath != "/results" {
					continue
				}
				found := false
				for _, v := range ps.Volumes {
					if v.Name == vm.Name && v.PersistentVolumeClaim != nil && m.claims[v.PersistentVolumeClaim.ClaimName] != nil {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: /results is not the results claim", j.Name)
				}
			}
		}
	}
	if len(images) != 1 {
		t.Errorf("the jobs run different images: %v", mapsKeys(images))
	}
	shardEnv := fmt.Sprint(shard.Env)
	if !strings.Contains(shardEnv, "CVAT_ACCESS_TOKEN") {
		t.Errorf("the shards get no CVAT_ACCESS_TOKEN: %s", shardEnv)
	}
	if m.services["cvatbench-pushgateway"] == nil || !strings.Contains(cm.Data["PUSHGATEWAY"], "cvatbench-pushgateway:9091") {
		t.Errorf("PUSHGATEWAY %q does not name the pushgateway Service", cm.Data["PUSHGATEWAY"])
	}
}

func mapsKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
