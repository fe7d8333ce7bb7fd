package smtpreply

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// constants maps each named constant of codes.go to its value: the reply
// codes and the enhanced codes.
func constants(t *testing.T) (codes map[string]int, enhanced map[string]Enhanced) {
	t.Helper()
	codes = map[string]int{}
	enhanced = map[string]Enhanced{}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "codes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, s := range g.Specs {
			v := s.(*ast.ValueSpec)
			for i, name := range v.Names {
				switch x := v.Values[i].(type) {
				case *ast.BasicLit:
					n, _ := strconv.Atoi(x.Value)
					codes[name.Name] = n
				case *ast.CompositeLit:
					var e Enhanced
					for j, el := range x.Elts {
						e[j], _ = strconv.Atoi(el.(*ast.BasicLit).Value)
					}
					enhanced[name.Name] = e
				}
			}
		}
	}
	return codes, enhanced
}

// Each constant's name says its value: C550… is 550, Se5Pol7…1 is 5.7.1.
// A name that lies is worse than a number.
func TestConstantNamesSayTheirValue(t *testing.T) {
	codes, enhanced := constants(t)
	if len(codes) == 0 || len(enhanced) == 0 {
		t.Fatalf("found %d codes and %d enhanced codes in codes.go", len(codes), len(enhanced))
	}
	for name, n := range codes {
		if !strings.HasPrefix(name, "C"+strconv.Itoa(n)) {
			t.Errorf("%s = %d", name, n)
		}
	}
	for name, e := range enhanced {
		// Se, the class, then the subject's digit after its name, and the
		// detail's digits at the end.
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, name)
		if want := strconv.Itoa(e[0]) + strconv.Itoa(e[1]) + strconv.Itoa(e[2]); digits != want {
			t.Errorf("%s = %v: the digits of its name are %s, want %s", name, e, digits, want)
		}
		if !(Reply{Code: e[0]*100 + 50, Enhanced: e}).Valid() {
			t.Errorf("%s = %v is no enhanced code a reply may carry", name, e)
		}
	}
}

// pair is a reply code and an enhanced code used together in one
// composite literal.
type pair struct {
	where          string
	code, enhanced string
}

// Every reply mxguard builds from the named constants pairs a code with an
// enhanced code of its class (RFC 3463 §2). The test reads every Go file
// of the module, outside tests, for Reply literals with both a Code and an
// Enhanced constant of this package, and for the codes passed beside an
// enhanced constant to a function (policy.Refuse).
func TestPairsAgreeInClass(t *testing.T) {
	codes, enhanced := constants(t)
	root := filepath.Join("..", "..")
	var pairs []pair
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pairs = append(pairs, filePairs(t, path)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) < 30 {
		t.Fatalf("found only %d pairs: the test no longer sees how replies are built", len(pairs))
	}
	for _, p := range pairs {
		c, ok := codes[p.code]
		e, ok2 := enhanced[p.enhanced]
		if !ok || !ok2 {
			t.Errorf("%s: %s with %s: not a named constant of smtpreply", p.where, p.code, p.enhanced)
			continue
		}
		if c/100 != e[0] {
			t.Errorf("%s: %s with %s: the classes disagree", p.where, p.code, p.enhanced)
		}
	}
}

// filePairs finds the (code, enhanced code) pairs of one file: the fields
// Code and Enhanced of a composite literal, or the arguments of a call in
// which a C… constant is followed by an Se… constant.
func filePairs(t *testing.T, path string) []pair {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	name := func(e ast.Expr) string {
		if s, ok := e.(*ast.SelectorExpr); ok {
			if x, ok := s.X.(*ast.Ident); ok && x.Name == "smtpreply" {
				return s.Sel.Name
			}
		}
		return ""
	}
	var out []pair
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CompositeLit:
			var p pair
			for _, el := range x.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				switch k, _ := kv.Key.(*ast.Ident); {
				case k == nil:
				case k.Name == "Code":
					p.code = name(kv.Value)
				case k.Name == "Enhanced":
					p.enhanced = name(kv.Value)
				}
			}
			if p.code != "" && p.enhanced != "" {
				p.where = fset.Position(x.Pos()).String()
				out = append(out, p)
			}
		case *ast.CallExpr:
			for i := 0; i+1 < len(x.Args); i++ {
				c, e := name(x.Args[i]), name(x.Args[i+1])
				if strings.HasPrefix(c, "C") && strings.HasPrefix(e, "Se") {
					out = append(out, pair{where: fset.Position(x.Pos()).String(), code: c, enhanced: e})
				}
			}
		}
		return true
	})
	return out
}
