package yamlpos

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// rule is a stand-in for a future rules-file schema: it exercises maps,
// recursion, unsigned and float fields, which the config itself lacks.
type rule struct {
	Name    string            `yaml:"name" required:"true"`
	Action  string            `yaml:"action" enum:"accept,reject"`
	Score   float64           `yaml:"score"`
	Weight  uint8             `yaml:"weight"`
	Headers map[string]string `yaml:"headers"`
	Any     []rule            `yaml:"any" expect:"a list of rules"`
	Wait    wait              `yaml:"wait"`
	Skipped string            `yaml:"-"`
	//lint:ignore U1000 only there to show that an unexported field is not a key.
	hidden string
}

// wait is a yaml.Unmarshaler, like config.Duration, so the tests cover
// fields that decode themselves.
type wait time.Duration

func (w *wait) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return fmt.Errorf("expected a duration like 30s, got %s", Describe(n))
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("expected a duration like 30s, got %s", Lit(n.Value))
	}
	*w = wait(d)
	return nil
}

// scalar parses a one-value YAML document.
func scalar(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml %q: %v", src, err)
	}
	return doc.Content[0]
}

func decodeRule(t *testing.T, src string) (rule, []string) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	var r rule
	var msgs []string
	for _, err := range DecodeStrict("rules.yaml", &doc, &r) {
		msgs = append(msgs, err.Error())
	}
	return r, msgs
}

func TestDecodeStrictValues(t *testing.T) {
	r, errs := decodeRule(t, `
name: outer
action: reject
score: 2.5
weight: 7
headers: {X-Spam: "yes", X-Count: 3}
wait: 1m
any:
  - name: inner
    any: [{name: leaf}]
`)
	if errs != nil {
		t.Fatalf("unexpected errors: %q", errs)
	}
	want := rule{
		Name: "outer", Action: "reject", Score: 2.5, Weight: 7,
		Headers: map[string]string{"X-Spam": "yes", "X-Count": "3"},
		Wait:    wait(time.Minute),
		Any:     []rule{{Name: "inner", Any: []rule{{Name: "leaf"}}}},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
}

func TestDecodeStrictErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{{
		name: "kinds and ranges",
		src:  "name: [x]\nweight: 300\nscore: .nan\nheaders: [a]\nany: {}\n",
		want: []string{
			"rules.yaml:1:7: name: expected a string, got a list",
			"rules.yaml:2:9: weight: expected a non-negative integer, got 300 which is out of range",
			"rules.yaml:3:8: score: expected a number, got .nan",
			"rules.yaml:4:10: headers: expected a mapping, got a list",
			"rules.yaml:5:6: any: expected a list of rules, got a mapping",
		},
	}, {
		name: "nested required and unknown keys point at the right spot",
		src:  "name: a\nany:\n  - action: accept\n  - name: b\n    colour: red\n",
		want: []string{
			`rules.yaml:3:5: any[0]: missing required key "name"`,
			`rules.yaml:5:5: unknown key "colour" in any[1] (expected one of: name, action, score, weight, headers, any, wait)`,
		},
	}, {
		name: "skipped and unexported fields are not keys",
		src:  "name: a\nSkipped: x\nhidden: y\n",
		want: []string{
			`rules.yaml:2:1: unknown key "Skipped" at top level (expected one of: name, action, score, weight, headers, any, wait)`,
			`rules.yaml:3:1: unknown key "hidden" at top level (expected one of: name, action, score, weight, headers, any, wait)`,
		},
	}, {
		name: "duplicate keys in maps and structs",
		src:  "name: a\nheaders:\n  A: 1\n  A: 2\nname: b\n",
		want: []string{
			`rules.yaml:4:3: headers: duplicate key "A" (first defined at line 3 column 3)`,
			`rules.yaml:5:1: duplicate key "name" (first defined at line 1 column 1)`,
		},
	}, {
		name: "merge keys: explicit wins, bad merge reported",
		src:  "base: &b {action: accept, score: 1}\n",
		want: []string{
			`rules.yaml:1:1: unknown key "base" at top level (expected one of: name, action, score, weight, headers, any, wait)`,
			`rules.yaml:1:1: missing required key "name"`,
		},
	}, {
		name: "alias errors are positioned at the alias",
		src:  "name: &n [x]\nany:\n  - name: *n\n",
		want: []string{
			"rules.yaml:1:7: name: expected a string, got a list",
			"rules.yaml:3:11: any[0].name: expected a string, got a list",
		},
	}, {
		name: "self-referencing alias does not recurse forever",
		src:  "name: x\nany: &a\n  - name: y\n    any: *a\n",
		want: []string{"rules.yaml:3:11: " + strings.Repeat("any[0].", 32) + "name: nesting too deep (an alias that contains itself?)"},
	}, {
		name: "merge cycle",
		src:  "name: x\nheaders: &h\n  <<: *h\n",
		want: []string{"rules.yaml:3:7: headers: merge key refers to a mapping that contains it"},
	}, {
		name: "odd values and keys cannot break the one-line format",
		src:  "name: x\nweight: !!int \"1\\n2\"\nheaders: {\"a\\nb\": [1], c.d: [2]}\nscore: !x%0Ay 1\n",
		want: []string{
			`rules.yaml:2:9: weight: expected a non-negative integer, got "1\n2"`,
			`rules.yaml:3:19: headers["a\nb"]: expected a string, got a list`,
			`rules.yaml:3:29: headers["c.d"]: expected a string, got a list`,
			`rules.yaml:4:8: score: expected a number, got a value tagged "!x\ny"`,
		},
	}, {
		name: "non-scalar key",
		src:  "name: x\n? [a]\n: b\n",
		want: []string{"rules.yaml:2:3: expected a key name, got a list"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := decodeRule(t, tt.src)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestDecodeStrictMerge(t *testing.T) {
	r, errs := decodeRule(t, `
name: x
any:
  - &base {name: base, action: accept, score: 1}
  - <<: *base
    name: derived
    score: 2
  - <<: [*base, {weight: 3}]
`)
	if errs != nil {
		t.Fatalf("unexpected errors: %q", errs)
	}
	want := []rule{
		{Name: "base", Action: "accept", Score: 1},
		{Name: "derived", Action: "accept", Score: 2},
		{Name: "base", Action: "accept", Score: 1, Weight: 3},
	}
	if !reflect.DeepEqual(r.Any, want) {
		t.Errorf("merged rules = %+v\nwant %+v", r.Any, want)
	}
}

// TestDecodeStrictAliasBomb: a chain of merges doubling at each level would
// expand to 2^40 keys without memoization; it must finish quickly.
func TestDecodeStrictAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: x\nheaders:\n  l0: &l0 {k: v}\n")
	for i := 1; i <= 40; i++ {
		b.WriteString("  l" + strconv.Itoa(i) + ": &l" + strconv.Itoa(i) + " {<<: [*l" + strconv.Itoa(i-1) + ", *l" + strconv.Itoa(i-1) + "]}\n")
	}
	done := make(chan []string, 1)
	go func() {
		_, errs := decodeRule(t, b.String())
		done <- errs
	}()
	select {
	case errs := <-done:
		// Each l<i> is a mapping, not a string, so every one is an error;
		// the point is that we got here.
		if len(errs) != 41 {
			t.Errorf("got %d errors, want 41: %q", len(errs), errs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("decoder did not finish: merge expansion is exponential")
	}
}

func TestDecoderNodeAndErrorf(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("name: x\nany:\n  - name: [y]\n"), &doc); err != nil {
		t.Fatal(err)
	}
	d := NewDecoder("f.yaml")
	var r rule
	d.Decode(&doc, &r)
	if n := d.Node("name"); n == nil || n.Line != 1 || n.Column != 7 {
		t.Errorf("Node(name) = %+v", n)
	}
	if n := d.Node("any[0].name"); n != nil {
		t.Errorf("Node of a failed value = %+v, want nil", n)
	}
	if n := d.Node("action"); n != nil {
		t.Errorf("Node of an absent key = %+v, want nil", n)
	}
	d.Errorf(d.Node("name"), "name: too short")
	d.Errorf(nil, "whole file")
	var msgs []string
	for _, err := range d.Errors() {
		msgs = append(msgs, err.Error())
	}
	want := []string{"f.yaml:1:1: whole file", "f.yaml:1:7: name: too short", "f.yaml:3:11: any[0].name: expected a string, got a list"}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("errors = %q, want %q", msgs, want)
	}
	var pe *PosError
	if !errors.As(d.Errors()[2], &pe) || pe.Line != 3 || pe.Column != 11 {
		t.Errorf("PosError = %+v", pe)
	}
}

func TestDescribe(t *testing.T) {
	for src, want := range map[string]string{
		"x": "a string", "1": "an integer", "1.5": "a number", "true": "a boolean", "~": "null",
		"[1]": "a list", "{a: 1}": "a mapping", "2001-12-14": "a timestamp", "!!binary aGk=": "binary data",
	} {
		if got := Describe(scalar(t, src)); got != want {
			t.Errorf("Describe(%s) = %q, want %q", src, got, want)
		}
	}
}

// color is an Enum: its set comes from the type, with no tag on the field.
type color string

func (color) EnumValues() []string { return []string{"red", "green", "blue"} }

// TestEnumType: a field whose type implements Enum accepts the type's
// values and rejects any other with the list, at the value's position.
func TestEnumType(t *testing.T) {
	type paint struct {
		Color color `yaml:"color"`
	}
	var p paint
	if errs := DecodeStrict("p.yaml", scalar(t, "color: green\n"), &p); len(errs) > 0 || p.Color != "green" {
		t.Fatalf("color: green: %v, %q", errs, p.Color)
	}
	errs := DecodeStrict("p.yaml", scalar(t, "color: mauve\n"), &p)
	if len(errs) != 1 || errs[0].Error() != `p.yaml:1:8: color: expected red, green or blue, got "mauve"` {
		t.Fatalf("color: mauve: %v", errs)
	}
}
