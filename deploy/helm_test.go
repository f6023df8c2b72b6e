package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/muckwatch/muckwatch/pipeline"
)

// chartHash is what `make chart` writes in rendered.yaml's first line: sha256sum of the chart's
// files (paths from deploy/helm, in byte order), hashed again.
func chartHash(t *testing.T) string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir("helm/muckwatch", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths = append(paths, strings.TrimPrefix(filepath.ToSlash(path), "helm/"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	var sums bytes.Buffer
	for _, p := range paths {
		data, err := os.ReadFile("helm/" + p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), p)
	}
	sum := sha256.Sum256(sums.Bytes())
	return hex.EncodeToString(sum[:])
}

var renderedHeader = regexp.MustCompile(`^# make chart: helm \S+ template of deploy/helm/muckwatch sha256 ([0-9a-f]{64})\n`)

// renderedDoc is one manifest of rendered.yaml, with the values it was rendered with.
type renderedDoc struct {
	values, source string
	kind, api      string
	json           []byte
}

func readRendered(t *testing.T) []renderedDoc {
	t.Helper()
	data, err := os.ReadFile("helm/rendered.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := renderedHeader.FindSubmatch(data)
	if m == nil {
		t.Fatal("helm/rendered.yaml does not start with the header `make chart` writes")
	}
	if want := chartHash(t); string(m[1]) != want {
		t.Fatalf("helm/rendered.yaml was rendered from another version of the chart (sha256 %s, the chart's is %s): run `make chart` and commit it", m[1], want)
	}
	var docs []renderedDoc
	values := ""
	for _, part := range strings.Split(string(data), "\n---\n") {
		source := ""
		for _, line := range strings.Split(part, "\n") {
			if v, ok := strings.CutPrefix(line, "# values: "); ok {
				values = v
			}
			if v, ok := strings.CutPrefix(line, "# Source: "); ok {
				source = v
			}
		}
		if source == "" {
			continue // the header
		}
		j, err := yaml.YAMLToJSON([]byte(part))
		if err != nil {
			t.Fatalf("%s (%s): not YAML: %v", source, values, err)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(j, &tm); err != nil {
			t.Fatalf("%s (%s): %v", source, values, err)
		}
		docs = append(docs, renderedDoc{values: values, source: source, kind: tm.Kind, api: tm.APIVersion, json: j})
	}
	return docs
}

// strict decodes a manifest into its Kubernetes API type, refusing a field the type does not have.
func strict(t *testing.T, d renderedDoc, into any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(d.json))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Errorf("%s (%s): not a valid %s %s: %v", d.source, d.values, d.api, d.kind, err)
	}
}

// TestHelmRendered: deploy/helm/rendered.yaml is `helm template` of the chart as it is (by its
// hash; `make chart` renders it with a helm built from the module proxy), and each manifest of
// each render decodes strictly into its Kubernetes API type (apps/v1 Deployment, v1 Service and
// ConfigMap, policy/v1 PodDisruptionBudget of k8s.io/api 0.34: no unknown field, no wrong type)
// and holds together: names valid, selectors matching the pods, probes and service ports naming
// container ports, every mounted volume declared, resources set, the config parsing.
func TestHelmRendered(t *testing.T) {
	docs := readRendered(t)
	byValues := map[string][]renderedDoc{}
	for _, d := range docs {
		byValues[d.values] = append(byValues[d.values], d)
	}
	if len(byValues) != 2 {
		t.Fatalf("helm/rendered.yaml holds %d renders, want 2 (make chart's CHART_SETS)", len(byValues))
	}
	for values, docs := range byValues {
		var kinds []string
		var dep *appsv1.Deployment
		var svc *corev1.Service
		var pdb *policyv1.PodDisruptionBudget
		configMaps := map[string]*corev1.ConfigMap{}
		for _, d := range docs {
			kinds = append(kinds, d.kind)
			switch d.api + " " + d.kind {
			case "apps/v1 Deployment":
				dep = new(appsv1.Deployment)
				strict(t, d, dep)
			case "v1 Service":
				svc = new(corev1.Service)
				strict(t, d, svc)
			case "v1 ConfigMap":
				cm := new(corev1.ConfigMap)
				strict(t, d, cm)
				configMaps[cm.Name] = cm
			case "policy/v1 PodDisruptionBudget":
				pdb = new(policyv1.PodDisruptionBudget)
				strict(t, d, pdb)
			default:
				t.Errorf("%s (%s): %s %s is not a kind this test knows: add it", d.source, values, d.api, d.kind)
			}
			var meta struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			_ = json.Unmarshal(d.json, &meta)
			if errs := validation.IsDNS1123Subdomain(meta.Metadata.Name); len(errs) > 0 {
				t.Errorf("%s (%s): name %q: %v", d.source, values, meta.Metadata.Name, errs)
			}
		}
		if dep == nil || svc == nil || pdb == nil || len(configMaps) == 0 {
			t.Fatalf("render %s: kinds %v, want a Deployment, a Service, a ConfigMap and a PodDisruptionBudget", values, kinds)
		}
		at := "render " + values + ": "
		pod := dep.Spec.Template
		sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			t.Errorf("%sthe Deployment's selector %v does not select its pods (labels %v): %v", at, dep.Spec.Selector, pod.Labels, err)
		}
		if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 1 {
			t.Errorf("%sthe Deployment has no replicas", at)
		}
		if len(pod.Spec.Containers) == 0 {
			t.Fatalf("%sthe pod has no container", at)
		}
		ports := map[string]bool{}
		volumes := map[string]corev1.Volume{}
		for _, v := range pod.Spec.Volumes {
			volumes[v.Name] = v
		}
		for _, c := range pod.Spec.Containers {
			if c.Name == "" || c.Image == "" {
				t.Errorf("%scontainer %q has image %q", at, c.Name, c.Image)
			}
			for _, p := range c.Ports {
				ports[p.Name] = true
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%scontainer %s: resources %v, want CPU and memory requests and a memory limit", at, c.Name, c.Resources)
			}
			for what, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if pr == nil || pr.HTTPGet == nil {
					t.Errorf("%scontainer %s has no HTTP %s probe", at, c.Name, what)
					continue
				}
				if pr.HTTPGet.Port.StrVal == "" || !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == pr.HTTPGet.Port.StrVal }) {
					t.Errorf("%scontainer %s: %s probe on port %v, not a named port of the container", at, c.Name, what, pr.HTTPGet.Port)
				}
			}
			if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("%sliveness probe on %s, want /healthz", at, c.LivenessProbe.HTTPGet.Path)
			}
			if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("%sreadiness probe on %s, want /readyz", at, c.ReadinessProbe.HTTPGet.Path)
			}
			for _, m := range c.VolumeMounts {
				if _, ok := volumes[m.Name]; !ok {
					t.Errorf("%scontainer %s mounts volume %q, which the pod does not declare", at, c.Name, m.Name)
				}
			}
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && (r.SecretKeyRef.Name == "" || r.SecretKeyRef.Key == "") {
					t.Errorf("%scontainer %s: env %s from a Secret with no name or key", at, c.Name, e.Name)
				}
			}
		}
		// the config: a ConfigMap of this render, parsing through the real parser
		config := false
		for _, v := range volumes {
			cm := v.ConfigMap
			if cm == nil {
				continue
			}
			if own, ok := configMaps[cm.Name]; ok {
				for key, text := range own.Data {
					if _, err := pipeline.ParseConfig(at+cm.Name+"/"+key, []byte(text)); err != nil {
						t.Errorf("%sConfigMap %s key %s: %v", at, cm.Name, key, err)
					}
					config = true
				}
			} else if !strings.Contains(values, "city.configMap="+cm.Name) {
				t.Errorf("%sthe pod mounts ConfigMap %s, neither rendered nor given in the values", at, cm.Name)
			}
		}
		if !config {
			t.Errorf("%sno muckwatch config is mounted from a rendered ConfigMap", at)
		}
		if ssel := labels.SelectorFromSet(svc.Spec.Selector); len(svc.Spec.Selector) == 0 || !ssel.Matches(labels.Set(pod.Labels)) {
			t.Errorf("%sthe Service selects %v, not the pods (%v)", at, svc.Spec.Selector, pod.Labels)
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.StrVal != "" && !ports[p.TargetPort.StrVal] {
				t.Errorf("%sService port %s targets %q, not a container port", at, p.Name, p.TargetPort.StrVal)
			}
		}
		psel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || psel.Empty() || !psel.Matches(labels.Set(pod.Labels)) || (pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil) {
			t.Errorf("%sthe PodDisruptionBudget (selector %v, minAvailable %v, maxUnavailable %v) does not guard the pods", at, pdb.Spec.Selector, pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
		}
	}
}
