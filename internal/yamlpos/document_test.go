package yamlpos

import (
	"errors"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseDocument(t *testing.T) {
	root, err := ParseDocument("f.yaml", []byte("# comment\na: 1\nb: [x]\n"))
	if err != nil {
		t.Fatalf("ParseDocument: %v", err)
	}
	if root == nil || root.Kind != yaml.MappingNode || root.Line != 2 || root.Column != 1 {
		t.Fatalf("root = %+v, want the mapping at 2:1", root)
	}
	var v struct {
		A int      `yaml:"a"`
		B []string `yaml:"b"`
	}
	if errs := DecodeStrict("f.yaml", root, &v); len(errs) != 0 || v.A != 1 || len(v.B) != 1 {
		t.Errorf("DecodeStrict = %+v, %v", v, errs)
	}
}

func TestParseDocumentEmpty(t *testing.T) {
	for _, src := range []string{"", "\n\n", "# only a comment\n", "~\n", "null", "---\n", "--- ~\n"} {
		root, err := ParseDocument("f.yaml", []byte(src))
		if root != nil || err != nil {
			t.Errorf("ParseDocument(%q) = %v, %v; want nil, nil", src, root, err)
		}
	}
}

func TestParseDocumentErrors(t *testing.T) {
	for src, want := range map[string]string{
		"a: 1\nb: [\n":          "f.yaml:2:1: invalid YAML: did not find expected node content",
		"a: 1\n  b: 2\n":        "f.yaml:2:1: invalid YAML: mapping values are not allowed in this context",
		"a: 1\nb:\n  - *nope\n": "f.yaml:3:5: invalid YAML: unknown anchor 'nope' referenced",
		"a: 1\n---\nb: 2\n":     "f.yaml:2:1: expected a single YAML document, found a second one",
		"a: 1\n---\nb: [\n":     "f.yaml:3:1: invalid YAML: did not find expected node content",
	} {
		_, err := ParseDocument("f.yaml", []byte(src))
		var pe *PosError
		if !errors.As(err, &pe) {
			t.Errorf("ParseDocument(%q) error %v (%T) is not a *PosError", src, err, err)
			continue
		}
		if err.Error() != want {
			t.Errorf("ParseDocument(%q)\n got %q\nwant %q", src, err.Error(), want)
		}
	}
}

// Duplicate keys are left to the Decoder, which reports them with columns.
func TestParseDocumentDuplicateKey(t *testing.T) {
	root, err := ParseDocument("f.yaml", []byte("a: 1\na: 2\n"))
	if err != nil || root == nil {
		t.Fatalf("ParseDocument = %v, %v", root, err)
	}
	var v struct {
		A int `yaml:"a"`
	}
	errs := DecodeStrict("f.yaml", root, &v)
	if len(errs) != 1 || errs[0].Error() != `f.yaml:2:1: duplicate key "a" (first defined at line 1 column 1)` {
		t.Errorf("DecodeStrict errors = %q", errs)
	}
}

func TestSyntaxErrorOneLine(t *testing.T) {
	pe := SyntaxError("f.yaml", nil, errors.New("yaml: line 7: bad\nthing  here"))
	if got, want := pe.Error(), "f.yaml:7:1: invalid YAML: bad thing here"; got != want {
		t.Errorf("SyntaxError = %q, want %q", got, want)
	}
	pe = SyntaxError("f.yaml", []byte("a: 1\nb: [x, *y]\n"), errors.New("yaml: unknown anchor 'y' referenced"))
	if got, want := pe.Error(), "f.yaml:2:8: invalid YAML: unknown anchor 'y' referenced"; got != want {
		t.Errorf("SyntaxError = %q, want %q", got, want)
	}
}
