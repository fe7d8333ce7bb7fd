package rules

// Comparisons that can never hold. The type checker accepts
// spf.result == "Fail", since both sides are strings, yet the check only
// ever says "fail": the rule would load and silently never match. A fact
// whose values are a fixed set declares them on its field in the facts
// type, and every exact comparison of such a fact with a string literal
// is checked against that set when the file loads.

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"

	"mxguard/internal/yamlpos"
)

// ValuesTag is the struct tag in which a field of the facts type declares
// every value the fact can take, separated by commas, with "" for the
// empty string: `values:"pass,fail,\"\""`. On a list of strings it
// declares the values of the elements.
const ValuesTag = "values"

// ParseValues reads a ValuesTag: nil when the tag is absent or empty, the
// fact then taking any value.
func ParseValues(tag string) []string {
	if strings.TrimSpace(tag) == "" {
		return nil
	}
	var out []string
	for _, v := range strings.Split(tag, ",") {
		v = strings.TrimSpace(v)
		if v == `""` {
			v = ""
		}
		out = append(out, v)
	}
	return out
}

// factRef is the fact a piece of a condition reads.
type factRef struct {
	// name is the fact as a rule names it: spf.result, checks.spf.result,
	// checks.NAME.result, dkim.signatures[].result.
	name string
	t    reflect.Type
	// values are the values it can take, nil when any.
	values []string
	// inList marks an element of a list of strings, which is named by
	// its list.
	inList bool
}

// neverMatch is a literal that its fact never takes, at its place in the
// condition.
type neverMatch struct {
	loc file.Location
	msg string
}

// linter finds the never-matching literals of one condition.
type linter struct {
	env   reflect.Type
	found []neverMatch
}

// lintLiterals returns the string literals that node, a parsed (not
// optimised, which folds literal lists away) condition over env's type,
// compares exactly (==, !=, in, not in) with a fact that never takes them.
// Inexact comparisons (matches, startsWith, contains…) and facts without
// declared values are not judged.
func lintLiterals(node ast.Node, env any) []neverMatch {
	t := reflect.TypeOf(env)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	l := &linter{env: t}
	l.walk(node, nil)
	return l.found
}

// walk visits n; elem is what # stands for in a predicate, nil outside
// one or when the collection is not a fact.
func (l *linter) walk(n ast.Node, elem *factRef) {
	switch n := n.(type) {
	case nil:
		return
	case *ast.BinaryNode:
		l.compare(n, elem)
	case *ast.BuiltinNode:
		// In any(list, pred), all(...), filter(...) and the like, # in
		// pred is an element of the first argument.
		var inner *factRef
		if len(n.Arguments) > 0 {
			if e, ok := l.items(n.Arguments[0], elem); ok {
				inner = &e
			}
		}
		for i, a := range n.Arguments {
			if p, ok := a.(*ast.PredicateNode); ok && i > 0 {
				l.walk(p.Node, inner)
				continue
			}
			l.walk(a, elem)
		}
		return
	}
	for _, c := range children(n) {
		l.walk(c, elem)
	}
}

// compare judges the literals of an exact comparison.
func (l *linter) compare(b *ast.BinaryNode, elem *factRef) {
	switch b.Operator {
	case "==", "!=":
		l.against(b.Left, b.Right, elem)
		l.against(b.Right, b.Left, elem)
	case "in": // "not in" is not applied to "in"
		if list, ok := b.Right.(*ast.ArrayNode); ok {
			for _, x := range list.Nodes {
				l.against(b.Left, x, elem)
			}
		} else if e, ok := l.items(b.Right, elem); ok {
			l.check(e, b.Left)
		}
	}
}

// against checks lit if fact is a fact with declared values.
func (l *linter) against(fact, lit ast.Node, elem *factRef) {
	if f, ok := l.ref(fact, elem); ok {
		l.check(f, lit)
	}
}

// check records lit if it is a string literal that f never takes.
func (l *linter) check(f factRef, lit ast.Node) {
	s, ok := lit.(*ast.StringNode)
	if !ok || f.values == nil || slices.Contains(f.values, s.Value) {
		return
	}
	shown := make([]string, len(f.values))
	hint := ""
	for i, v := range f.values {
		shown[i] = yamlpos.Lit(v)
		if hint == "" && strings.EqualFold(v, s.Value) {
			hint = fmt.Sprintf(" (did you mean %q?)", v)
		}
	}
	verb := "is never"
	if f.inList {
		verb = "never holds"
	}
	l.found = append(l.found, neverMatch{loc: s.Location(),
		msg: fmt.Sprintf("%s %s %q: expected one of %s%s", f.name, verb, s.Value, strings.Join(shown, ", "), hint)})
}

// ref resolves n to the fact it reads, if it reads one directly: a name,
// a field, a map entry or a list element, not the result of a function.
func (l *linter) ref(n ast.Node, elem *factRef) (factRef, bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		return field(l.env, n.Value, "")
	case *ast.ChainNode:
		return l.ref(n.Node, elem)
	case *ast.PointerNode:
		if n.Name == "" && elem != nil {
			return *elem, true
		}
	case *ast.MemberNode:
		base, ok := l.ref(n.Node, elem)
		if !ok {
			return factRef{}, false
		}
		key, _ := n.Property.(*ast.StringNode)
		switch t := deref(base.t); t.Kind() {
		case reflect.Struct:
			if key != nil {
				return field(t, key.Value, base.name+".")
			}
		case reflect.Map:
			name := base.name + ".NAME"
			if key != nil {
				name = base.name + "." + key.Value
			}
			return factRef{name: name, t: t.Elem()}, true
		case reflect.Slice, reflect.Array:
			return element(base)
		}
	case *ast.BuiltinNode:
		switch n.Name {
		case "first", "last", "find", "findLast":
			if len(n.Arguments) > 0 {
				return l.items(n.Arguments[0], elem)
			}
		}
	}
	return factRef{}, false
}

// items resolves n, a collection, to the fact its elements are.
func (l *linter) items(n ast.Node, elem *factRef) (factRef, bool) {
	if b, ok := n.(*ast.BuiltinNode); ok {
		if len(b.Arguments) == 0 {
			return factRef{}, false
		}
		switch b.Name {
		case "filter", "sort", "sortBy", "reverse", "uniq":
			return l.items(b.Arguments[0], elem)
		case "values":
			if m, ok := l.ref(b.Arguments[0], elem); ok && deref(m.t).Kind() == reflect.Map {
				return factRef{name: m.name + ".NAME", t: deref(m.t).Elem()}, true
			}
		}
		return factRef{}, false
	}
	f, ok := l.ref(n, elem)
	if !ok {
		return factRef{}, false
	}
	return element(f)
}

// element is the fact that an element of the list f is.
func element(f factRef) (factRef, bool) {
	t := deref(f.t)
	if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
		return factRef{}, false
	}
	if t.Elem().Kind() == reflect.String {
		return factRef{name: f.name, t: t.Elem(), values: f.values, inList: true}, true
	}
	return factRef{name: f.name + "[]", t: t.Elem()}, true
}

// field finds the fact named name (its expr tag, or its Go name without
// one, as expr does) among the fields of the struct t, and of the structs
// it embeds, whose fields expr promotes.
func field(t reflect.Type, name, prefix string) (factRef, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("expr"), ",")
		if f.Anonymous && tag == "" && deref(f.Type).Kind() == reflect.Struct {
			if r, ok := field(deref(f.Type), name, prefix); ok {
				return r, true
			}
			continue
		}
		if tag == name || tag == "" && f.Name == name {
			return factRef{name: prefix + name, t: f.Type, values: ParseValues(f.Tag.Get(ValuesTag))}, true
		}
	}
	return factRef{}, false
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// children are the nodes directly under n, as ast.Walk visits them.
func children(n ast.Node) []ast.Node {
	switch n := n.(type) {
	case *ast.UnaryNode:
		return []ast.Node{n.Node}
	case *ast.BinaryNode:
		return []ast.Node{n.Left, n.Right}
	case *ast.ChainNode:
		return []ast.Node{n.Node}
	case *ast.MemberNode:
		return []ast.Node{n.Node, n.Property}
	case *ast.SliceNode:
		return []ast.Node{n.Node, n.From, n.To}
	case *ast.CallNode:
		return append([]ast.Node{n.Callee}, n.Arguments...)
	case *ast.BuiltinNode:
		return n.Arguments
	case *ast.PredicateNode:
		return []ast.Node{n.Node}
	case *ast.VariableDeclaratorNode:
		return []ast.Node{n.Value, n.Expr}
	case *ast.SequenceNode:
		return n.Nodes
	case *ast.ConditionalNode:
		return []ast.Node{n.Cond, n.Exp1, n.Exp2}
	case *ast.ArrayNode:
		return n.Nodes
	case *ast.MapNode:
		return n.Pairs
	case *ast.PairNode:
		return []ast.Node{n.Key, n.Value}
	}
	return nil
}
