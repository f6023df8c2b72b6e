package pipeline

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/muckwatch/muckwatch/configs"
)

// TestShippedConfigNamesEveryField: the embedded configs/muckwatch.yaml is where an operator
// reads what can be set (docs/operations.md says it documents every field), so each field of
// Config is in it, with its default or an example. A setting added to the code without a line
// there fails here with its path. The rules' common settings (for, min_fixes, ...) and the
// outputs' own cluster are named once, by a comment.
func TestShippedConfigNamesEveryField(t *testing.T) {
	data, err := configs.FS.ReadFile(configs.DefaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		if n.Kind == yaml.DocumentNode {
			walk(prefix, n.Content[0])
			return
		}
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := prefix + n.Content[i].Value
			have[p] = true
			walk(p+".", n.Content[i+1])
		}
	}
	walk("", &doc)

	// named once for all by a comment of the file rather than under each rule or output
	byComment := func(p string) bool {
		if rest, ok := strings.CutPrefix(p, "detectors.rules."); ok {
			_, field, _ := strings.Cut(rest, ".")
			return slices.Contains([]string{"for", "min_fixes", "escalate_after", "window", "clear_for", "disabled"}, field)
		}
		return slices.Contains([]string{"outputs.brokers", "outputs.sasl", "outputs.tls"}, p)
	}
	var missing []string
	var fields func(prefix string, typ reflect.Type)
	fields = func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if strings.Contains(opts, "inline") {
				fields(prefix, f.Type)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			p := prefix + name
			if !have[p] {
				if !byComment(p) {
					missing = append(missing, p)
				}
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			// a struct's own fields, unless it reads itself from YAML (a duration, a custom type)
			if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Time{}) && !reflect.PointerTo(ft).Implements(reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()) {
				fields(p+".", ft)
			}
		}
	}
	fields("", reflect.TypeOf(Config{}))
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("configs/%s does not name %d settings of the code: %s", configs.DefaultConfig, len(missing), strings.Join(missing, ", "))
	}
}
