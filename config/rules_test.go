package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestRulesPaths: rules file paths are resolved against the config file's
// directory, absolute paths are kept, and the order is preserved.
func TestRulesPaths(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(dir, "rules", "local.yaml")
	strict := filepath.Join(other, "strict.yaml")
	for _, f := range []string{local, strict} {
		if err := os.WriteFile(f, []byte("rules: []\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "mxguard.yaml")
	cfg := issueExample + "rules:\n  - rules/local.yaml\n  - " + strict + "\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := []string{local, strict}; !reflect.DeepEqual(c.Rules, want) {
		t.Errorf("rules = %q, want %q", c.Rules, want)
	}

	// Parse resolves against filepath.Dir of the name it is given.
	c, err = Parse(filepath.Join(dir, "other-name.yaml"), []byte(cfg))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Rules[0] != local {
		t.Errorf("rules[0] = %q, want %q", c.Rules[0], local)
	}
}

func TestRulesDefault(t *testing.T) {
	for _, extra := range []string{"", "rules:\n", "rules: []\n"} {
		c, err := Parse("config.yaml", []byte(issueExample+extra))
		if err != nil {
			t.Fatalf("%q: %v", extra, err)
		}
		if len(c.Rules) != 0 {
			t.Errorf("%q: rules = %q, want none (the built-in set)", extra, c.Rules)
		}
	}
}

func TestRulesErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.yaml")
	if err := os.WriteFile(file, []byte("rules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "mxguard.yaml")
	tests := []struct {
		name, rules, want string
	}{{
		name:  "missing relative file is reported resolved",
		rules: "rules:\n  - a.yaml\n  - b.yaml\n",
		want:  cfgFile + `:17:5: rules[1]: no such file "` + filepath.Join(dir, "b.yaml") + `"`,
	}, {
		name:  "directory",
		rules: "rules: [" + dir + "]\n",
		want:  cfgFile + `:15:9: rules[0]: cannot use "` + dir + `": not a regular file`,
	}, {
		name:  "same file twice",
		rules: "rules: [a.yaml, " + file + "]\n",
		want:  cfgFile + `:15:17: rules[1]: "` + file + `" is already listed as rules[0]`,
	}, {
		name:  "empty path",
		rules: "rules: [\"\"]\n",
		want:  cfgFile + `:15:9: rules[0]: expected a file path, got ""`,
	}, {
		name:  "null entry",
		rules: "rules: [~]\n",
		want:  cfgFile + `:15:9: rules[0]: expected a string, got null`,
	}, {
		name:  "not a list",
		rules: "rules: a.yaml\n",
		want:  cfgFile + `:15:8: rules: expected a list of rules file paths, got a string`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(cfgFile, []byte(issueExample+tt.rules))
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}
