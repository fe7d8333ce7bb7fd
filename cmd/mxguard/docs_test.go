package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"mxguard/config"
	"mxguard/policy"
)

const (
	factsBegin = "<!-- facts:begin -->\n"
	factsEnd   = "<!-- facts:end -->"
)

// TestRulesDocListsEveryFact keeps the facts table of docs/rules.md equal
// to what "mxguard rules facts --markdown" prints, so that the page an
// admin writes rules from cannot drift from the code.
func TestRulesDocListsEveryFact(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"rules", "facts", "--markdown"}, &out, &errb); code != exitOK {
		t.Fatalf("mxguard rules facts --markdown: exit %d: %s", code, errb.String())
	}
	data, err := os.ReadFile("../../docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	if strings.Count(doc, factsBegin) != 1 || strings.Count(doc, factsEnd) != 1 {
		t.Fatalf("docs/rules.md must hold the line %q once and the line %q once, around the facts table",
			strings.TrimSpace(factsBegin), factsEnd)
	}
	_, rest, _ := strings.Cut(doc, factsBegin)
	table, _, ok := strings.Cut(rest, factsEnd)
	if !ok {
		t.Fatalf("docs/rules.md: %q comes before %q", factsEnd, strings.TrimSpace(factsBegin))
	}
	if table != out.String() {
		t.Errorf("the facts table in docs/rules.md is out of date: replace the lines between %q and %q "+
			"with the output of \"mxguard rules facts --markdown\" (docs/update-facts.sh does it).\n"+
			"docs/rules.md has:\n%s\nthe command prints:\n%s",
			strings.TrimSpace(factsBegin), factsEnd, table, out.String())
	}
}

// TestDefaultRulesCarryAComment: every rule of the built-in set has a
// comment line directly above its "- name:" line that says why it is
// there, since admins copy this file as the start of their own.
func TestDefaultRulesCarryAComment(t *testing.T) {
	const path = "../../rules/default.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	comment := regexp.MustCompile(`^\s*#\s*\S`)
	item := regexp.MustCompile(`^\s*-\s+name:`)
	// The compiled set says where each rule starts, whatever the order of
	// its keys, so that a rule written without "- name:" first is caught.
	set := policy.DefaultRules()
	if len(set.Rules) == 0 {
		t.Fatal("the default rule set is empty")
	}
	for _, r := range set.Rules {
		if r.Line < 1 || r.Line > len(lines) {
			t.Errorf("rule %s: line %d is outside %s", r.Name, r.Line, path)
			continue
		}
		if !item.MatchString(lines[r.Line-1]) {
			t.Errorf("%s:%d: rule %s: start the rule with its \"- name:\" line, got %q", path, r.Line, r.Name, lines[r.Line-1])
			continue
		}
		if r.Line < 2 || !comment.MatchString(lines[r.Line-2]) {
			t.Errorf("%s:%d: rule %s has no comment line directly above it: say why the rule is there", path, r.Line, r.Name)
		}
	}
	count := 0
	for _, l := range lines {
		if item.MatchString(l) {
			count++
		}
	}
	if count != len(set.Rules) {
		t.Errorf("%s has %d \"- name:\" lines but %d rules", path, count, len(set.Rules))
	}
}

// TestHeaderLimitAgrees: config validates headers.max_bytes against the
// limit policy enforces.
func TestHeaderLimitAgrees(t *testing.T) {
	if config.MaxHeaderBytes != policy.MaxHeaderBytes {
		t.Fatalf("config.MaxHeaderBytes %d, policy.MaxHeaderBytes %d", config.MaxHeaderBytes, policy.MaxHeaderBytes)
	}
}
