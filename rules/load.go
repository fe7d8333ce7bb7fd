package rules

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"go.yaml.in/yaml/v3"

	"mxguard/internal/boundedfile"
	"mxguard/internal/mailaddr"
	"mxguard/internal/smtpreply"
	"mxguard/internal/yamlpos"
)

// Errors is every problem found while loading, each "file:line:col: msg".
type Errors []error

// Error joins the problems one per line.
func (e Errors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap gives errors.Is/As access to each problem.
func (e Errors) Unwrap() []error { return e }

// fileSpec is a rules file as written.
type fileSpec struct {
	Rules      []ruleSpec     `yaml:"rules" required:"true" expect:"a list of rules"`
	Thresholds *thresholdSpec `yaml:"thresholds"`
}

type ruleSpec struct {
	Name    string            `yaml:"name" required:"true" expect:"a rule name"`
	Stage   string            `yaml:"stage" enum:"connect,helo,mail,rcpt,data"`
	When    condition         `yaml:"when" required:"true" expect:"a condition over the facts"`
	Action  string            `yaml:"action" required:"true" enum:"accept,reject,tempfail,quarantine,hold,tag,score"`
	Reply   string            `yaml:"reply" expect:"a reply like \"550 5.7.1 text\""`
	Score   float64           `yaml:"score"`
	Headers map[string]string `yaml:"headers" expect:"a mapping of header names to values"`
	Mode    string            `yaml:"mode" enum:"enforce,monitor"`
	Domains []string          `yaml:"domains" expect:"a list of recipient domains"`
}

// condition is a rule's when as written. It is a string, except that the
// conditions that are just `true` or `false` may be written unquoted,
// although YAML reads them as booleans: they are what an admin writes for
// a rule that always (or, while it is being tried, never) applies.
type condition string

// UnmarshalYAML takes a string, or what YAML reads as a number or a date
// (which the compiler then judges as a condition), or a boolean.
func (c *condition) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!timestamp":
			*c = condition(n.Value)
			return nil
		case "!!bool":
			// YAML 1.2 also spells them True and FALSE; expr knows only
			// true and false, and of the same length, so that positions
			// inside the condition stay right.
			var b bool
			if err := n.Decode(&b); err == nil {
				*c = condition(strconv.FormatBool(b))
				return nil
			}
		}
	}
	return fmt.Errorf("expected a condition over the facts, got %s", yamlpos.Describe(n))
}

type thresholdSpec struct {
	Reject     float64 `yaml:"reject"`
	Quarantine float64 `yaml:"quarantine"`
}

// envValue is env as the struct value a pointer env points to. expr
// resolves a condition's names to field indexes at compile time only
// against a struct value; against a pointer it looks each name up at run
// time, copying the whole field (a check's facts) for every name read:
// three times the cost of an evaluation. Run time takes either.
func envValue(env any) any {
	if v := reflect.ValueOf(env); v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		return v.Elem().Interface()
	}
	return env
}

// Options describe the facts that conditions are compiled against.
type Options struct {
	// Env is a value of the facts type the caller will evaluate with (a
	// struct whose fields carry `expr` tags). A string field (or list of
	// strings) with a fixed set of values declares them in a ValuesTag,
	// and a condition that compares it with another literal is a load
	// error rather than a rule that never matches.
	Env any
	// Since maps a top-level fact to the first stage at which it is known,
	// so that a rule reading it earlier is a load error, not a rule that
	// silently never matches.
	Since map[string]string
	// Only maps a top-level fact to the one stage where it is set.
	Only map[string]string
}

// MaxFileBytes bounds a rules file: a thousand rules fit in a tenth of it.
const MaxFileBytes = 4 << 20

// LoadFiles loads rules files in order into one Set. On failure the error
// is an Errors listing every problem in every file.
func LoadFiles(paths []string, o Options) (*Set, error) {
	set := &Set{}
	var errs Errors
	seen := map[string]*Rule{}
	for _, p := range paths {
		data, err := boundedfile.Read(p, MaxFileBytes)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:1:1: %w", p, errors.Unwrap(err)))
			continue
		}
		s, err := Parse(p, data, o)
		if err != nil {
			errs = append(errs, err.(Errors)...)
			continue
		}
		for _, r := range s.Rules {
			if prev := seen[r.Name]; prev != nil {
				errs = append(errs, fmt.Errorf("%s:%d:%d: rule %q is already defined at %s:%d", r.File, r.Line, r.Column, r.Name, prev.File, prev.Line))
				continue
			}
			seen[r.Name] = r
			set.Rules = append(set.Rules, r)
		}
		if s.Thresholds != (Thresholds{}) {
			set.Thresholds = s.Thresholds
		}
		set.Files = append(set.Files, p)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return set, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
var headerNameRE = regexp.MustCompile(`^[!-9;-~]+$`) // RFC 5322 §3.6.8 ftext

// Parse loads one rules file's text. file names it in errors.
func Parse(file string, data []byte, o Options) (*Set, error) {
	root, err := yamlpos.ParseDocument(file, data)
	if err != nil {
		return nil, Errors{err}
	}
	if root == nil {
		return nil, Errors{&yamlpos.PosError{File: file, Line: 1, Column: 1, Msg: "empty rules file (expected a mapping with a rules list)"}}
	}
	d := yamlpos.NewDecoder(file)
	src := splitLines(data)
	var spec fileSpec
	d.Decode(root, &spec)
	set := &Set{Files: []string{file}}
	names := map[string]int{}
	for i, rs := range spec.Rules {
		path := fmt.Sprintf("rules[%d]", i)
		n := d.Node(path)
		if n == nil {
			continue // already reported
		}
		r := &Rule{Name: rs.Name, Stage: rs.Stage, When: string(rs.When), Action: rs.Action, Score: rs.Score,
			Mode: rs.Mode, File: file, Line: n.Line, Column: n.Column}
		if r.Stage == "" {
			r.Stage = "data"
		}
		if r.Mode == "" {
			r.Mode = Enforce
		}
		at := func(key string) *yaml.Node {
			if k := d.Node(path + "." + key); k != nil {
				return k
			}
			return n
		}
		if rs.Name != "" {
			if !nameRE.MatchString(rs.Name) {
				d.Errorf(at("name"), "%s.name: expected letters, digits, '-', '_' or '.', got %q", path, rs.Name)
			} else if j, dup := names[rs.Name]; dup {
				d.Errorf(at("name"), "%s.name: rule %q is already defined in rules[%d]", path, rs.Name, j)
			}
			names[rs.Name] = i
		}
		validateAction(d, at, path, r, rs, o)
		if rs.Action == Hold && r.Stage != "data" {
			// What is held is the message: before the end of DATA there is
			// none, and holding "the session" would have to quietly carry
			// the decision over to a later stage, as quarantine does.
			d.Errorf(at("stage"), "%s.stage: a hold rule keeps the message, which exists only at stage data, not %s", path, r.Stage)
		}
		if len(rs.Domains) > 0 {
			if r.Stage != "rcpt" && r.Stage != "data" {
				d.Errorf(at("domains"), "%s.domains: recipient domains are known only at stage rcpt or data, not %s", path, r.Stage)
			}
			for _, dom := range rs.Domains {
				r.Domains = append(r.Domains, mailaddr.ParseDomain(dom).ASCII())
			}
		}
		if rs.When != "" && d.Node(path+".when") != nil {
			compileRule(d, src, d.Node(path+".when"), path, r, o)
		}
		set.Rules = append(set.Rules, r)
	}
	if t := spec.Thresholds; t != nil {
		if t.Reject < 0 || t.Quarantine < 0 {
			d.Errorf(d.Node("thresholds"), "thresholds: expected positive scores")
		}
		if t.Reject > 0 && t.Quarantine > 0 && t.Quarantine >= t.Reject {
			d.Errorf(d.Node("thresholds"), "thresholds: quarantine (%g) must be below reject (%g), or the quarantine threshold never acts", t.Quarantine, t.Reject)
		}
		set.Thresholds = Thresholds{Reject: t.Reject, Quarantine: t.Quarantine}
	}
	if errs := d.Errors(); len(errs) > 0 {
		return nil, Errors(errs)
	}
	return set, nil
}

func validateAction(d *yamlpos.Decoder, at func(string) *yaml.Node, path string, r *Rule, rs ruleSpec, o Options) {
	if rs.Reply != "" {
		switch rs.Action {
		case Reject, Tempfail:
			rep, err := smtpreply.Parse(rs.Reply)
			switch {
			case err != nil:
				d.Errorf(at("reply"), "%s.reply: %v", path, err)
			case rs.Action == Reject && rep.Code/100 != 5:
				d.Errorf(at("reply"), "%s.reply: a reject answers 5xx, got %d", path, rep.Code)
			case rs.Action == Tempfail && rep.Code/100 != 4:
				d.Errorf(at("reply"), "%s.reply: a tempfail answers 4xx, got %d", path, rep.Code)
			default:
				r.Reply = &rep
				if err := r.compileReply(o); err != nil {
					d.Errorf(at("reply"), "%s.reply: %v", path, err)
				}
			}
		case "":
		case Hold:
			d.Errorf(at("reply"), "%s.reply: only reject and tempfail rules give a reply; with hold mxguard answers that the message is held", path)
		default:
			d.Errorf(at("reply"), "%s.reply: only reject and tempfail rules give a reply; with %s the backend answers", path, rs.Action)
		}
	}
	if rs.Action == Score && rs.Score == 0 {
		d.Errorf(at("action"), "%s.score: a score rule needs a non-zero score", path)
	}
	if rs.Action != Score && rs.Score != 0 && rs.Action != "" {
		d.Errorf(at("score"), "%s.score: only score rules carry a score (this rule's action is %s)", path, rs.Action)
	}
	if rs.Action == Tag && len(rs.Headers) == 0 {
		d.Errorf(at("action"), "%s.headers: a tag rule needs headers to add", path)
	}
	if len(rs.Headers) > 0 && rs.Action != Tag && rs.Action != "" {
		d.Errorf(at("headers"), "%s.headers: only tag rules add headers (this rule's action is %s)", path, rs.Action)
	}
	keys := make([]string, 0, len(rs.Headers))
	for k := range rs.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := rs.Headers[k]
		if !headerNameRE.MatchString(k) || strings.ContainsAny(v, "\r\n\x00") {
			d.Errorf(at("headers"), "%s.headers: %q: expected a header name (printable ASCII without ':') and a one-line value", path, k)
			continue
		}
		r.Headers = append(r.Headers, Header{Name: k, Value: v})
	}
}

// compileRule compiles the condition, the when node n of the file whose
// lines are src, and reports expr's errors at their place in the file.
func compileRule(d *yamlpos.Decoder, src []string, n *yaml.Node, path string, r *Rule, o Options) {
	o.Env = envValue(o.Env)
	opts := append([]expr.Option{expr.Env(o.Env), expr.AsBool(), expr.MaxNodes(2000)}, functions...)
	prog, err := expr.Compile(r.When, opts...)
	if err != nil {
		var fe *file.Error
		line, col := n.Line, n.Column
		msg := err.Error()
		if errors.As(err, &fe) {
			msg = fe.Message
			line, col = condPos(src, n, r.When, fe.From, fe.Line, fe.Column)
			if strings.HasPrefix(msg, "unknown name ") || strings.Contains(msg, " has no field ") {
				// expr speaks of Go types; an admin needs the fact's name.
				msg = fmt.Sprintf("unknown fact %s (\"mxguard rules facts\" lists them)", chainAt(r.When, fe.Line, fe.Column))
			}
		}
		d.Errorf(&yaml.Node{Line: line, Column: col}, "%s.when: %s", path, msg)
		return
	}
	r.program = prog
	// The compiled tree is optimised (a literal list becomes a set), so
	// the literals are judged on the tree as written.
	if tree, err := parser.Parse(r.When); err == nil {
		cond := file.NewSource(r.When)
		for _, m := range lintLiterals(tree.Node, o.Env) {
			at := (&file.Error{Location: m.loc}).Bind(cond)
			line, col := condPos(src, n, r.When, m.loc.From, at.Line, at.Column)
			d.Errorf(&yaml.Node{Line: line, Column: col}, "%s.when: %s", path, m.msg)
		}
	}
	var bad []string
	r.Names, bad = topNames(prog.Node())
	for _, b := range bad {
		d.Errorf(n, "%s.when: %s", path, b)
	}
	for _, name := range r.Names {
		if s, ok := o.Since[name]; ok && slices.Index(Stages, r.Stage) < slices.Index(Stages, s) {
			d.Errorf(n, "%s.when: %s is not known yet at stage %s (it is set from stage %s on)", path, name, r.Stage, s)
		}
		if s, ok := o.Only[name]; ok && r.Stage != s {
			d.Errorf(n, "%s.when: %s is set only at stage %s, not %s", path, name, s, r.Stage)
		}
	}
}

// chainAt returns the dotted name around a position of a condition, the
// fact an error is about.
func chainAt(src string, line, col int) string {
	lines := strings.Split(src, "\n")
	if line < 1 || line > len(lines) {
		return "?"
	}
	l := []rune(lines[line-1])
	isName := func(r rune) bool {
		return r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
	}
	start, end := min(max(col, 0), len(l)), min(max(col, 0), len(l))
	for start > 0 && isName(l[start-1]) {
		start--
	}
	for end < len(l) && isName(l[end]) {
		end++
	}
	return strings.Trim(string(l[start:end]), ".")
}

// topNames collects the top-level facts a condition reads, and the
// problems with constant arguments that the type checker cannot see.
func topNames(node ast.Node) ([]string, []string) {
	v := &nameVisitor{seen: map[string]bool{}}
	ast.Walk(&node, v)
	names := v.names[:0]
	for _, n := range v.names {
		if !functionNames[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, v.bad
}

type nameVisitor struct {
	seen  map[string]bool
	names []string
	bad   []string
}

func (v *nameVisitor) Visit(n *ast.Node) {
	if c, ok := (*n).(*ast.CallNode); ok {
		if id, ok := c.Callee.(*ast.IdentifierNode); ok {
			v.seen[id.Value] = true // a function, not a fact
		}
		// A constant network in in_net is checked now, not at 3 a.m.
		if id, ok := c.Callee.(*ast.IdentifierNode); ok && id.Value == "in_net" && len(c.Arguments) == 2 {
			if s, ok := c.Arguments[1].(*ast.StringNode); ok {
				if _, err := netip.ParsePrefix(s.Value); err != nil {
					v.bad = append(v.bad, fmt.Sprintf("in_net: %q is not a network like 192.0.2.0/24", s.Value))
				}
			}
		}
	}
	if id, ok := (*n).(*ast.IdentifierNode); ok && !v.seen[id.Value] {
		v.seen[id.Value] = true
		v.names = append(v.names, id.Value)
	}
}

// functionNames are the callable names, which are not facts.
var functionNames = map[string]bool{"in_net": true}

// functions are the helpers conditions may call besides expr's built-ins.
var functions = []expr.Option{
	// in_net(client.ip, "192.0.2.0/24"): whether an address is in a network.
	expr.Function("in_net", func(params ...any) (any, error) {
		ip, err := netip.ParseAddr(params[0].(string))
		if err != nil {
			return false, nil
		}
		p, err := netip.ParsePrefix(params[1].(string))
		if err != nil {
			return nil, fmt.Errorf("in_net: %w", err)
		}
		return p.Contains(ip.Unmap()), nil
	}, new(func(string, string) bool)),
}
