// Package yamlpos is a strict, position-aware YAML decoder shared by
// mxguard's configuration file (package config) and its rules files
// (package rules).
//
// yaml.v3's own Decoder.KnownFields reports unknown keys without columns and
// stops at the first type error of a kind it does not collect, which is not
// good enough for an operator staring at a config file: every problem should
// come with FILE:LINE:COL. So ParseDocument parses the bytes into a
// yaml.Node tree (turning syntax errors into positioned ones), and Decoder
// walks that tree itself, driven by reflection over the target's struct
// tags, collecting every problem as a *PosError. Nothing here is specific to
// any one file format.
package yamlpos

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PosError is one problem found at a position in a YAML file. Its Error
// method renders it as "FILE:LINE:COL: MSG", the format editors and
// compilers use, so operators can jump straight to the offending spot.
type PosError struct {
	File   string // file name as given by the caller, shown verbatim
	Line   int    // 1-based line
	Column int    // 1-based column
	Msg    string // what was expected, lower-case, no trailing period
}

// Error implements error.
func (e *PosError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// SortErrors orders errs by position (line, then column) so the output
// reads top to bottom like the file. Errors that are not *PosError sort
// first, and ties keep their original order.
func SortErrors(errs []error) {
	slices.SortStableFunc(errs, func(a, b error) int {
		pa, pb := posOf(a), posOf(b)
		if pa[0] != pb[0] {
			return pa[0] - pb[0]
		}
		return pa[1] - pb[1]
	})
}

func posOf(err error) [2]int {
	var pe *PosError
	if errors.As(err, &pe) {
		return [2]int{pe.Line, pe.Column}
	}
	return [2]int{0, 0}
}

// maxDepth bounds the walk. The target types bound it already, but a
// recursive type in some future schema combined with a self-referencing
// YAML anchor (`a: &x [*x]`) would otherwise recurse forever.
const maxDepth = 64

// Decoder decodes yaml.Node trees into Go values strictly, collecting every
// problem as a *PosError instead of stopping at the first.
//
// The target is described by struct tags on its fields:
//
//	yaml:"name"          key name; "-" skips the field; untagged fields are skipped
//	required:"true"      the key must be present and not null
//	enum:"a,b,c"         a string field must be one of these values; a
//	                     field whose type implements Enum needs no tag
//	expect:"a list of x" phrase used in "expected ..." messages instead of
//	                     the one derived from the Go type
//
// Supported Go types are structs, pointers to them, slices, maps with string
// keys, strings, bools, integers, floats and any type whose pointer
// implements yaml.Unmarshaler (its error is positioned at the value node).
//
// Semantics worth knowing: unknown and duplicate keys are errors; a key with
// a null value (`key:` or `key: ~`) leaves the field at its prior value, so
// callers can pre-fill defaults; a present slice replaces the default rather
// than appending to it; aliases and merge keys (`<<: *base`) are followed.
type Decoder struct {
	file  string
	errs  []error
	nodes map[string]*yaml.Node
	// merged memoizes expanded mappings; a nil entry marks one being
	// expanded, which is how merge cycles are caught. Memoizing also stops
	// a "billion laughs" chain of merges from costing exponential time.
	merged map[*yaml.Node][]pair
	// steps counts decoded values; aliases let a small file describe a
	// huge tree, so we give up beyond maxSteps instead of hanging.
	steps    int
	tooLarge bool
	tooDeep  bool
}

// maxSteps bounds the number of values decoded from one document. Real
// configs and rules files decode a few thousand values at most.
const maxSteps = 1_000_000

// NewDecoder returns a Decoder whose errors name file.
func NewDecoder(file string) *Decoder {
	return &Decoder{file: file, nodes: map[string]*yaml.Node{}, merged: map[*yaml.Node][]pair{}}
}

// DecodeStrict decodes n (a document node or its content) into out, which
// must be a non-nil pointer, and returns all problems sorted by position.
// It is the one-call form of NewDecoder + Decode + Errors.
func DecodeStrict(file string, n *yaml.Node, out any) []error {
	d := NewDecoder(file)
	d.Decode(n, out)
	return d.Errors()
}

// Decode decodes n into out, which must be a non-nil pointer. Problems are
// accumulated; fetch them with Errors. The top level is reported with an
// empty path, so a missing top-level key points at 1:1.
func (d *Decoder) Decode(n *yaml.Node, out any) {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("yamlpos: Decode needs a non-nil pointer")
	}
	if n != nil && n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			d.errAt(1, 1, "empty document (expected %s)", expectFor(rv.Elem().Type(), ""))
			return
		}
		n = n.Content[0]
	}
	if n == nil {
		d.errAt(1, 1, "empty document (expected %s)", expectFor(rv.Elem().Type(), ""))
		return
	}
	d.value(n, rv.Elem(), "", "", 0)
}

// Errors returns the problems found so far, sorted by position. The same
// message at the same spot is reported once, even when an alias made the
// decoder visit that spot several times.
func (d *Decoder) Errors() []error {
	out := make([]error, 0, len(d.errs))
	seen := map[string]bool{}
	for _, err := range d.errs {
		if s := err.Error(); !seen[s] {
			seen[s] = true
			out = append(out, err)
		}
	}
	SortErrors(out)
	return out
}

// Node returns the node a path was decoded from ("backend.address",
// "listen[0].tls"), or nil when the key was absent, null, or failed to
// decode. Validation code uses it both to position its own errors and to
// skip values that were not written by the user or already reported.
func (d *Decoder) Node(path string) *yaml.Node {
	return d.nodes[path]
}

// Errorf records a problem at n's position (1:1 when n is nil), so code that
// validates decoded values can report in the same format as the decoder.
func (d *Decoder) Errorf(n *yaml.Node, format string, args ...any) {
	if n == nil {
		d.errAt(1, 1, format, args...)
		return
	}
	d.errAt(n.Line, n.Column, format, args...)
}

func (d *Decoder) errAt(line, col int, format string, args ...any) {
	// Columns and lines can be 0 for synthetic nodes; 1:1 keeps the
	// FILE:LINE:COL contract that tools and tests rely on.
	// Messages must stay on one line: callers split the output on
	// newlines, and a value we failed to quote must not forge an extra
	// FILE:LINE:COL line.
	msg := strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(fmt.Sprintf(format, args...))
	d.errs = append(d.errs, &PosError{
		File:   d.file,
		Line:   max(line, 1),
		Column: max(col, 1),
		Msg:    msg,
	})
}

// prefix renders "path: " for messages, or "" at the top level.
func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

// resolve follows aliases. Anchors always point at non-alias nodes, but the
// loop is bounded anyway so a malformed hand-built tree cannot hang us.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; i < 8 && n != nil && n.Kind == yaml.AliasNode; i++ {
		n = n.Alias
	}
	return n
}

// Describe names what a node holds, for "got ..." in messages: "a string",
// "an integer", "a list", "a mapping", "null" and so on. It is exported so
// yaml.Unmarshaler implementations elsewhere can word errors the same way.
func Describe(n *yaml.Node) string {
	n = resolve(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "a boolean"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!timestamp":
		return "a timestamp"
	case "!!binary":
		return "binary data"
	case "!!str", "!!merge":
		return "a string"
	}
	return "a value tagged " + Lit(n.Tag)
}

// gotScalar is Describe, except that a scalar mismatching a scalar field
// is shown by value ("lots", 1.5): for `max_recipients: lots` the value is
// more helpful than "a string". Containers are only named, since quoting
// a whole list would swamp the message.
func gotScalar(n *yaml.Node, k reflect.Kind) string {
	switch k {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array, reflect.Pointer:
		return Describe(n)
	}
	if n.Kind != yaml.ScalarNode {
		return Describe(n)
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!int", "!!float", "!!bool":
		return Lit(n.Value)
	}
	return Describe(n)
}

// Lit shows a scalar's text as written when that is unambiguous (1.5,
// -26214400) and quoted otherwise, so odd input such as an explicitly
// tagged `!!int "1\n2"` cannot break the one-line message format. It is
// exported, like Describe, so yaml.Unmarshaler implementations and
// validation code elsewhere can quote values the same way.
func Lit(s string) string {
	if s != "" && !strings.ContainsAny(s, " \"") && strconv.Quote(s) == `"`+s+`"` {
		return s
	}
	return strconv.Quote(s)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// Enum is implemented by a string type whose values are a closed set, so
// that the set is declared once, beside the type's constants, rather than
// again in an enum tag on every field of that type. The decoder rejects
// any other value with "expected a, b or c", the values in the order
// EnumValues gives them.
type Enum interface {
	EnumValues() []string
}

var enumType = reflect.TypeFor[Enum]()

// expectFor is the "expected ..." phrase for a Go type, overridable per
// field with the expect tag.
func expectFor(t reflect.Type, tag string) string {
	if tag != "" {
		return tag
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return expectFor(t.Elem(), "")
	}
	return "a " + t.String()
}

// value decodes n into v. orig is n before alias resolution: positions are
// reported where the value is written, which for an alias is the *name.
func (d *Decoder) value(orig *yaml.Node, v reflect.Value, path, expect string, depth int) bool {
	if depth > maxDepth {
		// Once is enough: every branch of a recursive alias would
		// otherwise report its own copy.
		if !d.tooDeep {
			d.tooDeep = true
			d.Errorf(orig, "%snesting too deep (an alias that contains itself?)", prefix(path))
		}
		return false
	}
	if d.steps++; d.steps > maxSteps {
		if !d.tooLarge {
			d.tooLarge = true
			d.Errorf(orig, "%sdocument expands to too many values (aliases?)", prefix(path))
		}
		return false
	}
	n := resolve(orig)
	if n == nil {
		d.Errorf(orig, "%sdangling alias", prefix(path))
		return false
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			var pe *PosError
			if errors.As(err, &pe) {
				d.errs = append(d.errs, pe)
			} else {
				d.Errorf(orig, "%s%s", prefix(path), err.Error())
			}
			return false
		}
		d.nodes[path] = orig
		return true
	}
	mismatch := func() bool {
		d.Errorf(orig, "%sexpected %s, got %s", prefix(path), expectFor(v.Type(), expect), gotScalar(n, v.Kind()))
		return false
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return mismatch()
		}
		nv := reflect.New(v.Type().Elem())
		if !d.value(orig, nv.Elem(), path, expect, depth+1) {
			return false
		}
		v.Set(nv)
		return true
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return mismatch()
		}
		d.nodes[path] = orig
		return d.structure(n, v, path, depth)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return mismatch()
		}
		d.nodes[path] = orig
		return d.mapping(n, v, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return mismatch()
		}
		d.nodes[path] = orig
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		ok := true
		for i, item := range n.Content {
			if !d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), "", depth+1) {
				ok = false
			}
		}
		v.Set(s)
		return ok
	}
	if n.Kind != yaml.ScalarNode {
		return mismatch()
	}
	tag := n.ShortTag()
	switch v.Kind() {
	case reflect.String:
		// Numbers and dates are accepted as their literal text, so
		// `helo: 1234` or `dir: 2024` need no quoting; booleans and null
		// are not, because `key: yes`-style surprises are exactly what a
		// strict config should catch.
		switch tag {
		case "!!str", "!!int", "!!float", "!!timestamp":
		default:
			return mismatch()
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if tag != "!!bool" {
			return mismatch()
		}
		b, err := strconv.ParseBool(n.Value)
		if err != nil {
			return mismatch()
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if tag != "!!int" || n.Decode(&i) != nil {
			return mismatch()
		}
		if v.OverflowInt(i) {
			d.Errorf(orig, "%sexpected %s, got %s which is out of range", prefix(path), expectFor(v.Type(), expect), Lit(n.Value))
			return false
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if tag != "!!int" || n.Decode(&u) != nil {
			return mismatch()
		}
		if v.OverflowUint(u) {
			d.Errorf(orig, "%sexpected %s, got %s which is out of range", prefix(path), expectFor(v.Type(), expect), Lit(n.Value))
			return false
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if (tag != "!!float" && tag != "!!int") || n.Decode(&f) != nil || math.IsNaN(f) {
			return mismatch()
		}
		v.SetFloat(f)
	default:
		d.Errorf(orig, "%scannot decode into Go type %s", prefix(path), v.Type())
		return false
	}
	d.nodes[path] = orig
	return true
}

// field is a decodable struct field.
type field struct {
	name     string
	index    int
	required bool
	enum     []string
	expect   string
}

func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		f := field{name: name, index: i, required: sf.Tag.Get("required") == "true", expect: sf.Tag.Get("expect")}
		if e := sf.Tag.Get("enum"); e != "" {
			f.enum = strings.Split(e, ",")
		} else if sf.Type.Kind() == reflect.String && sf.Type.Implements(enumType) {
			f.enum = reflect.Zero(sf.Type).Interface().(Enum).EnumValues()
		}
		out = append(out, f)
	}
	return out
}

// orList renders "a, b or c" for enum messages.
func orList(vals []string) string {
	if len(vals) == 1 {
		return vals[0]
	}
	return strings.Join(vals[:len(vals)-1], ", ") + " or " + vals[len(vals)-1]
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// mapPath names a map entry: "headers.X-Spam" for ordinary keys, and
// headers["odd key"] for keys that would make the path ambiguous.
func mapPath(path, key string) string {
	if key != "" && !strings.ContainsAny(key, ".[]\"") && Lit(key) == key {
		return join(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func (d *Decoder) structure(n *yaml.Node, v reflect.Value, path string, depth int) bool {
	fields := fieldsOf(v.Type())
	byName := make(map[string]field, len(fields))
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		byName[f.name] = f
		names = append(names, f.name)
	}
	ok := true
	present := map[string]bool{}
	for _, p := range d.pairs(n, path, depth) {
		name := resolve(p.key).Value
		f, known := byName[name]
		if !known {
			where := "in " + path
			if path == "" {
				where = "at top level"
			}
			d.Errorf(p.key, "unknown key %q %s (expected one of: %s)", name, where, strings.Join(names, ", "))
			ok = false
			continue
		}
		present[name] = true
		fp := join(path, name)
		fv := v.Field(f.index)
		if isNull(resolve(p.val)) {
			// Null keeps the default, which lets users leave a section
			// header with everything below it commented out. A required
			// key has no default, so null there is an error.
			if f.required {
				d.Errorf(p.val, "%sexpected %s, got null", prefix(fp), expectFor(fv.Type(), f.expect))
				ok = false
			}
			continue
		}
		if !d.value(p.val, fv, fp, f.expect, depth+1) {
			ok = false
			continue
		}
		if f.enum != nil && fv.Kind() == reflect.String && !slices.Contains(f.enum, fv.String()) {
			d.Errorf(p.val, "%sexpected %s, got %q", prefix(fp), orList(f.enum), fv.String())
			delete(d.nodes, fp)
			ok = false
		}
	}
	for _, f := range fields {
		if f.required && !present[f.name] {
			if path == "" {
				d.errAt(1, 1, "missing required key %q", f.name)
			} else {
				d.Errorf(n, "%smissing required key %q", prefix(path), f.name)
			}
			ok = false
		}
	}
	return ok
}

func (d *Decoder) mapping(n *yaml.Node, v reflect.Value, path string, depth int) bool {
	if v.Type().Key().Kind() != reflect.String {
		d.Errorf(n, "%scannot decode into Go type %s", prefix(path), v.Type())
		return false
	}
	m := reflect.MakeMap(v.Type())
	ok := true
	for _, p := range d.pairs(n, path, depth) {
		key := resolve(p.key).Value
		ev := reflect.New(v.Type().Elem()).Elem()
		if !d.value(p.val, ev, mapPath(path, key), "", depth+1) {
			ok = false
			continue
		}
		m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), ev)
	}
	v.Set(m)
	return ok
}
