package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/detectors"
)

type oaCity struct{ c *city.City }

func (o oaCity) City() *city.City { return o.c }

type oaRisk struct{}

func (oaRisk) Risk(string) (detectors.Risk, bool) { return detectors.Risk{}, false }

// oaDoc is the part of the OpenAPI document the tests read.
type oaDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Security   *[]map[string][]string                `json:"security"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
		Parameters map[string]oaParam `json:"parameters"`
	} `json:"components"`
}

type oaOperation struct {
	OperationID string                     `json:"operationId"`
	Description string                     `json:"description"`
	Roles       []string                   `json:"x-muckwatch-roles"`
	Security    *[]map[string][]string     `json:"security"`
	Parameters  []oaParam                  `json:"parameters"`
	RequestBody json.RawMessage            `json:"requestBody"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

type oaParam struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

// oaFixture is the server under test and its OpenAPI document, fetched through its handler.
type oaFixture struct {
	srv *Server
	doc oaDoc
	raw any // the document as generic JSON, for $ref resolution
	ops map[string]oaOperation
}

func oaKey(method, path string) string { return strings.ToUpper(method) + " " + path }

func newOAFixture(t *testing.T) *oaFixture {
	t.Helper()
	t.Setenv("MUCKWATCH_API_TOKENS", "")
	c, err := city.Load("../configs/cities/shenzhen")
	if err != nil {
		t.Fatalf("cannot load the sample city: %v", err)
	}
	cfg := Config{}.WithDefaults()
	srv, err := NewServer(cfg, NewLive(cfg), nil, oaCity{c}, oaRisk{}, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json without a token: status %d, want 200; body %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /api/v1/openapi.json: Content-Type %q, want application/json", ct)
	}
	body := rec.Body.Bytes()
	f := &oaFixture{srv: srv, ops: map[string]oaOperation{}}
	if err := json.Unmarshal(body, &f.raw); err != nil {
		t.Fatalf("/api/v1/openapi.json is not valid JSON: %v", err)
	}
	if err := json.Unmarshal(body, &f.doc); err != nil {
		t.Fatalf("/api/v1/openapi.json does not have the shape of an OpenAPI document: %v", err)
	}
	for path, item := range f.doc.Paths {
		for _, m := range []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"} {
			rawOp, ok := item[m]
			if !ok {
				continue
			}
			var op oaOperation
			if err := json.Unmarshal(rawOp, &op); err != nil {
				t.Fatalf("operation %s %s: %v", m, path, err)
			}
			// path-level parameters apply to every operation of the path
			if rawParams, ok := item["parameters"]; ok {
				var common []oaParam
				if err := json.Unmarshal(rawParams, &common); err != nil {
					t.Fatalf("parameters of path %s: %v", path, err)
				}
				op.Parameters = append(common, op.Parameters...)
			}
			for i, p := range op.Parameters {
				op.Parameters[i] = f.param(t, p)
			}
			f.ops[oaKey(m, path)] = op
		}
	}
	return f
}

// param resolves a parameter reference.
func (f *oaFixture) param(t *testing.T, p oaParam) oaParam {
	t.Helper()
	if p.Ref == "" {
		return p
	}
	name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
	if !ok {
		t.Errorf("parameter $ref %q does not point into #/components/parameters", p.Ref)
		return p
	}
	q, ok := f.doc.Components.Parameters[name]
	if !ok {
		t.Errorf("parameter $ref %q: no such parameter", p.Ref)
		return p
	}
	return q
}

// resolve returns the node a local $ref ("#/a/b") points to.
func (f *oaFixture) resolve(ref string) (any, error) {
	pointer, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local to the document", ref)
	}
	node := f.raw
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := node.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %q is not inside an object", ref, tok)
		}
		if node, ok = m[tok]; !ok {
			return nil, fmt.Errorf("$ref %q: no %q", ref, tok)
		}
	}
	return node, nil
}

// schemaProperties returns the property names of a component schema, following allOf and $ref.
func (f *oaFixture) schemaProperties(t *testing.T, node any) []string {
	t.Helper()
	m, ok := node.(map[string]any)
	if !ok {
		t.Fatalf("schema %v is not an object", node)
	}
	if ref, ok := m["$ref"].(string); ok {
		target, err := f.resolve(ref)
		if err != nil {
			t.Fatal(err)
		}
		return f.schemaProperties(t, target)
	}
	var out []string
	if props, ok := m["properties"].(map[string]any); ok {
		for name := range props {
			out = append(out, name)
		}
	}
	if all, ok := m["allOf"].([]any); ok {
		for _, sub := range all {
			out = append(out, f.schemaProperties(t, sub)...)
		}
	}
	sort.Strings(out)
	return out
}

// jsonFields returns the JSON names of a struct's fields, embedded structs flattened.
// jsonFieldsOf returns the JSON object keys of v: those it writes when it encodes itself (with
// every optional field set in v), else those of its type.
func jsonFieldsOf(t *testing.T, v any) []string {
	t.Helper()
	if _, ok := v.(json.Marshaler); !ok {
		return jsonFields(reflect.TypeOf(v))
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("cannot encode %T: %v", v, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%T does not encode as a JSON object: %v", v, err)
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func jsonFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		fld := t.Field(i)
		tag := fld.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if fld.Anonymous && tag == "" && fld.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(fld.Type)...)
			continue
		}
		if !fld.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = fld.Name
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func TestOpenAPIDocument(t *testing.T) {
	f := newOAFixture(t)

	t.Run("version and served document", func(t *testing.T) {
		if !strings.HasPrefix(f.doc.OpenAPI, "3.1.") {
			t.Errorf("openapi = %q, want 3.1.x", f.doc.OpenAPI)
		}
		var embedded any
		if err := json.Unmarshal(openAPIDoc, &embedded); err != nil {
			t.Fatalf("the embedded openapi.json is not valid JSON: %v", err)
		}
		if !reflect.DeepEqual(embedded, f.raw) {
			t.Error("the served document differs from the embedded openapi.json")
		}
	})

	t.Run("routes", func(t *testing.T) {
		var want, got []string
		for _, rt := range f.srv.routes {
			want = append(want, oaKey(rt.method, rt.path))
		}
		for k := range f.ops {
			got = append(got, k)
		}
		sort.Strings(want)
		sort.Strings(got)
		for _, k := range want {
			if _, ok := f.ops[k]; !ok {
				t.Errorf("route %s is served but not in the document", k)
			}
		}
		for _, k := range got {
			if !slices.Contains(want, k) {
				t.Errorf("the document describes %s, which is not served", k)
			}
		}
		ids := map[string]string{}
		for k, op := range f.ops {
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", k)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %q is used by %s and %s", op.OperationID, other, k)
			}
			ids[op.OperationID] = k
		}
	})

	t.Run("security", func(t *testing.T) {
		bearer, ok := f.doc.Components.SecuritySchemes["bearer"]
		if !ok || bearer.Type != "http" || bearer.Scheme != "bearer" {
			t.Fatalf("components.securitySchemes.bearer = %+v (declared %v), want {type: http, scheme: bearer}", bearer, ok)
		}
		for _, rt := range f.srv.routes {
			k := oaKey(rt.method, rt.path)
			op, ok := f.ops[k]
			if !ok {
				continue // reported by routes
			}
			sec := f.doc.Security
			if op.Security != nil {
				sec = op.Security
			}
			if len(rt.roles) == 0 {
				if sec != nil && len(*sec) > 0 {
					t.Errorf("%s is public but the document requires %v", k, *sec)
				}
				if len(op.Roles) != 0 {
					t.Errorf("%s is public but x-muckwatch-roles lists %v", k, op.Roles)
				}
				continue
			}
			if sec == nil || !slices.ContainsFunc(*sec, func(req map[string][]string) bool { _, ok := req["bearer"]; return ok }) {
				t.Errorf("%s needs a token but does not declare the bearer security", k)
			}
			for _, code := range []string{"401", "403", "429"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s needs a token but declares no %s response", k, code)
				}
			}
			want := []string{string(RoleAdmin)}
			for _, r := range rt.roles {
				want = append(want, string(r))
				if !strings.Contains(op.Description, string(r)) {
					t.Errorf("%s: the description does not say that role %s may use it", k, r)
				}
			}
			if !strings.Contains(op.Description, string(RoleAdmin)) {
				t.Errorf("%s: the description does not say that admin may use it", k)
			}
			got := slices.Clone(op.Roles)
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: x-muckwatch-roles = %v, want %v", k, got, want)
			}
		}
	})

	t.Run("path parameters", func(t *testing.T) {
		placeholder := regexp.MustCompile(`\{([^}]+)\}`)
		for _, rt := range f.srv.routes {
			k := oaKey(rt.method, rt.path)
			op, ok := f.ops[k]
			if !ok {
				continue
			}
			var want, got []string
			for _, m := range placeholder.FindAllStringSubmatch(rt.path, -1) {
				want = append(want, m[1])
			}
			for _, p := range op.Parameters {
				if p.In != "path" {
					continue
				}
				got = append(got, p.Name)
				if !p.Required {
					t.Errorf("%s: path parameter %s must be required", k, p.Name)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: path parameters declared %v, want %v", k, got, want)
			}
		}
	})

	t.Run("query and header parameters", func(t *testing.T) {
		// The parameters each handler reads (r.URL.Query().Get, r.Header.Get), as "in:name".
		// the parameters each route takes (and refuses any other): the server's list
		type paramTest struct {
			route string
			want  []string
		}
		var tests []paramTest
		for _, rt := range f.srv.routes {
			tt := paramTest{route: oaKey(rt.method, rt.path)}
			for _, p := range rt.params {
				tt.want = append(tt.want, "query:"+p)
			}
			if rt.path == "/api/v1/alerts/stream" {
				tt.want = append(tt.want, "header:Last-Event-ID")
			}
			tests = append(tests, tt)
		}
		covered := map[string]bool{}
		for _, tt := range tests {
			covered[tt.route] = true
			t.Run(tt.route, func(t *testing.T) {
				op, ok := f.ops[tt.route]
				if !ok {
					t.Fatalf("%s is not in the document", tt.route)
				}
				var got []string
				for _, p := range op.Parameters {
					if p.In == "path" {
						continue
					}
					got = append(got, p.In+":"+p.Name)
				}
				want := slices.Clone(tt.want)
				slices.Sort(want)
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("parameters declared %v, want %v", got, want)
				}
				if len(want) > 0 {
					if _, ok := op.Responses["400"]; !ok {
						t.Error("takes parameters but declares no 400 response")
					}
				}
			})
		}
		for _, rt := range f.srv.routes {
			if k := oaKey(rt.method, rt.path); !covered[k] {
				t.Errorf("route %s has no expected parameter list in this test: add one", k)
			}
		}
		required := map[string][]string{
			"GET /api/v1/vehicles/near":          {"lat", "lon"},
			"GET /api/v1/vehicles/{plate}/track": {"from", "to"},
			"GET /api/v1/violations":             {"from", "to"},
			"GET /api/v1/heatmap":                {"from", "to"},
		}
		for route, names := range required {
			for _, p := range f.ops[route].Parameters {
				if slices.Contains(names, p.Name) && !p.Required {
					t.Errorf("%s: query parameter %s must be required", route, p.Name)
				}
			}
		}
	})

	t.Run("request body", func(t *testing.T) {
		op := f.ops["POST /api/v1/alerts/{id}/actions"]
		var body struct {
			Required bool `json:"required"`
			Content  map[string]struct {
				Schema struct {
					Ref string `json:"$ref"`
				} `json:"schema"`
			} `json:"content"`
		}
		if err := json.Unmarshal(op.RequestBody, &body); err != nil {
			t.Fatalf("POST /api/v1/alerts/{id}/actions: requestBody: %v", err)
		}
		if !body.Required || body.Content["application/json"].Schema.Ref != "#/components/schemas/ActionRequest" {
			t.Errorf("POST /api/v1/alerts/{id}/actions: requestBody = %+v, want a required application/json ActionRequest", body)
		}
	})

	t.Run("references resolve", func(t *testing.T) {
		var walk func(at string, node any)
		walk = func(at string, node any) {
			switch n := node.(type) {
			case map[string]any:
				if ref, ok := n["$ref"].(string); ok {
					if _, err := f.resolve(ref); err != nil {
						t.Errorf("at %s: %v", at, err)
					}
				}
				for k, v := range n {
					walk(at+"/"+k, v)
				}
			case []any:
				for i, v := range n {
					walk(fmt.Sprintf("%s/%d", at, i), v)
				}
			}
		}
		walk("#", f.raw)
	})

	t.Run("schemas match the Go types", func(t *testing.T) {
		tests := []struct {
			schema string
			typ    any
		}{
			{"Error", errorBody{}},
			{"VehiclePosition", VehiclePosition{}},
			{"Risk", detectors.Risk{}},
			{"RiskFactor", detectors.RiskFactor{}},
			{"PermitView", PermitView{}},
			{"VehicleReport", VehicleReport{}},
			{"NearVehicle", NearVehicle{}},
			{"AlertMessage", detectors.Change{}},
			{"Action", Action{}},
			{"Handling", Handling{}},
			{"OfferedOfficer", OfferedOfficer{}},
			{"DispatchPlan", DispatchPlan{}},
			{"AlertView", AlertView{Supervision: Supervision{Dispatch: &DispatchPlan{}, Escalation: []EscalationStep{{}}}}},
			{"EscalationStep", EscalationStep{District: "d", Roles: []string{"supervisor"}, Channels: []string{"c"}}},
			{"Digest", Digest{}},
			{"DistrictDigest", DistrictDigest{Name: "n", More: 1}},
			{"DigestRule", DigestRule{}},
			{"DigestLevel", DigestLevel{Name: "n"}},
			{"DigestAlertLine", DigestAlertLine{}},
			{"FeedItem", FeedItem{}},
			{"ActionRequest", ActionRequest{}},
			{"Me", Me{}},
			{"FleetAnswer", FleetAnswer{}},
			{"LastPosition", LastPosition{}},
			{"OfficerView", OfficerView{}},
			{"AlertsPage", AlertsPage{}},
			{"ViolationsAnswer", ViolationsAnswer{}},
			{"TrackProperties", TrackProperties{}},
			{"HandlingAnswer", HandlingAnswer{}},
			{"HandlingKPI", HandlingKPI{}},
			{"ScorecardsAnswer", ScorecardsAnswer{}},
			{"Scorecard", Scorecard{}},
			{"PeriodScorecard", PeriodScorecard{}},
			{"RankingAnswer", RankingAnswer{}},
			{"Ranked", Ranked{}},
			{"PeriodRange", PeriodRange{}},
		}
		for _, tt := range tests {
			t.Run(tt.schema, func(t *testing.T) {
				node, err := f.resolve("#/components/schemas/" + tt.schema)
				if err != nil {
					t.Fatal(err)
				}
				got, want := f.schemaProperties(t, node), jsonFieldsOf(t, tt.typ)
				if !slices.Equal(got, want) {
					t.Errorf("schema %s has properties %v; the Go type %T has %v", tt.schema, got, tt.typ, want)
				}
			})
		}
	})

	t.Run("rules", func(t *testing.T) {
		node, err := f.resolve("#/components/schemas/Rule/enum")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range node.([]any) {
			got = append(got, fmt.Sprint(v))
		}
		if want := ruleNames(); !slices.Equal(got, want) {
			t.Errorf("schema Rule enumerates %v, the detectors have %v", got, want)
		}
	})
}
