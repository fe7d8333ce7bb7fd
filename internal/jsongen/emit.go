package jsongen

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
)

// fn is the body of one generated function.
type fn struct {
	g      *gen
	w      bytes.Buffer
	usesEr bool
	depth  int    // for the names of loop and switch variables
	where  string // the field being written, for Result.Fallbacks
}

func (f *fn) line(format string, args ...any) {
	fmt.Fprintf(&f.w, format, args...)
	f.w.WriteByte('\n')
}

// try appends with a call that may fail: encoding/json stops at the
// first error, and so does the generated code.
func (f *fn) try(call string) {
	f.usesEr = true
	f.line("if b, err = %s; err != nil {", call)
	f.line("return b, err")
	f.line("}")
}

func (f *fn) appendLit(s string) {
	switch {
	case len(s) == 1:
		f.line("b = append(b, %s)", strconv.QuoteRune(rune(s[0])))
	case strconv.CanBackquote(s):
		f.line("b = append(b, `%s`...)", s)
	default:
		f.line("b = append(b, %s...)", strconv.Quote(s))
	}
}

// separator states: whether a field of the object may have been written.
const (
	noneYet = iota
	maybe
	written
)

// structFunc writes t's function.
func (g *gen) structFunc(w *bytes.Buffer, t reflect.Type) {
	name := g.funcs[t]
	fmt.Fprintf(w, "// %s appends v as encoding/json writes a %s.\n", name, t.String())
	fmt.Fprintf(w, "func %s(b []byte, v *%s) ([]byte, error) {\n", name, g.typeName(t))
	fields := typeFields(t)
	if why := g.unsupported(t, fields); why != "" {
		g.note("%v: %s", t, why)
		fmt.Fprintf(w, "return %s.AppendMarshal(b, v)\n}\n\n", g.rt)
		return
	}
	f := &fn{g: g}
	f.line("b = append(b, '{')")
	state := noneYet
	for _, fd := range fields {
		state = f.field(t, fd, state)
	}
	f.line("b = append(b, '}')")
	f.line("return b, nil")
	if f.usesEr {
		w.WriteString("var err error\n")
	}
	w.Write(f.w.Bytes())
	w.WriteString("}\n\n")
}

// unsupported says why t's fields are left to json.Marshal, or "".
func (g *gen) unsupported(t reflect.Type, fields []field) string {
	for _, fd := range fields {
		switch {
		case fd.omitZero:
			return "a field is tagged omitzero"
		case fd.quoted:
			return `a field is tagged ",string"`
		}
		st := t
		for _, i := range fd.index {
			if st.Kind() == reflect.Pointer {
				st = st.Elem()
			}
			sf := st.Field(i)
			if !sf.IsExported() && st.PkgPath() != g.pkgPath {
				return "a field is reached through an unexported embedded struct of another package"
			}
			st = sf.Type
		}
	}
	return ""
}

// field writes one field of an object, whose fields so far are in state.
func (f *fn) field(t reflect.Type, fd field, state int) int {
	sel := "v"
	guards := 0
	st := t
	for j, i := range fd.index {
		if st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		sf := st.Field(i)
		sel += "." + sf.Name
		f.where = st.String() + "." + sf.Name
		st = sf.Type
		if j < len(fd.index)-1 && st.Kind() == reflect.Pointer {
			// encoding/json skips the fields of a nil embedded pointer.
			f.line("if %s != nil {", sel)
			guards++
		}
	}
	if fd.omitEmpty {
		if cond := nonEmpty(st, sel); cond != "" {
			f.line("if %s {", cond)
			guards++
		}
	}
	name := `"` + htmlEscapedName(fd.name) + `":`
	switch state {
	case noneYet:
		f.appendLit(name)
	case written:
		f.appendLit("," + name)
	default:
		f.line("if b[len(b)-1] != '{' {")
		f.line("b = append(b, ',')")
		f.line("}")
		f.appendLit(name)
	}
	f.value(st, sel)
	for range guards {
		f.line("}")
	}
	switch {
	case guards == 0:
		return written
	case state == noneYet:
		return maybe
	}
	return state
}

// nonEmpty is encoding/json's test for omitempty, negated, or "" for the
// kinds it never omits.
func nonEmpty(t reflect.Type, x string) string {
	switch t.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return "len(" + x + ") != 0"
	case reflect.Bool:
		return x
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return x + " != 0"
	case reflect.Interface, reflect.Pointer:
		return x + " != nil"
	}
	return ""
}

// conv is x converted to the predeclared type to, when t is another type.
func conv(t reflect.Type, to, x string) string {
	if t.PkgPath() == "" && t.Name() == to {
		return x
	}
	return to + "(" + x + ")"
}

// value writes x, of type t.
func (f *fn) value(t reflect.Type, x string) {
	g := f.g
	k := t.Kind()
	switch {
	case k == reflect.Pointer && t.Name() == "" && t.Elem() == timeType:
		f.try(fmt.Sprintf("%s.AppendTimePtr(b, %s)", g.rt, x))
	case k == reflect.Pointer && implementsMarshaler(t):
		// A pointer to a type with its own method: encoding/json calls
		// the method through the pointer, and names the pointer's type
		// in its errors.
		g.note("%s (%v): its own MarshalJSON or MarshalText", f.where, t)
		f.try(fmt.Sprintf("%s.AppendMarshal(b, %s)", g.rt, x))
	case k == reflect.Pointer:
		f.line("if %s == nil {", x)
		f.appendLit("null")
		f.line("} else {")
		if name, ok := g.funcs[t.Elem()]; ok {
			f.try(fmt.Sprintf("%s(b, %s)", name, x))
		} else {
			f.value(t.Elem(), "(*"+x+")")
		}
		f.line("}")
	case t == timeType:
		f.try(fmt.Sprintf("%s.AppendTime(b, %s)", g.rt, x))
	case implementsMarshaler(t) || t == numberType:
		g.note("%s (%v): its own MarshalJSON or MarshalText", f.where, t)
		f.try(fmt.Sprintf("%s.AppendMarshal(b, %s)", g.rt, x))
	case k == reflect.Bool:
		g.usesStrconv = true
		f.line("b = %s.AppendBool(b, %s)", g.sc, conv(t, "bool", x))
	case k >= reflect.Int && k <= reflect.Int64:
		g.usesStrconv = true
		f.line("b = %s.AppendInt(b, %s, 10)", g.sc, conv(t, "int64", x))
	case k >= reflect.Uint && k <= reflect.Uintptr:
		g.usesStrconv = true
		f.line("b = %s.AppendUint(b, %s, 10)", g.sc, conv(t, "uint64", x))
	case k == reflect.Float32:
		f.try(fmt.Sprintf("%s.AppendFloat(b, float64(%s), 32)", g.rt, x))
	case k == reflect.Float64:
		f.try(fmt.Sprintf("%s.AppendFloat(b, %s, 64)", g.rt, conv(t, "float64", x)))
	case k == reflect.String:
		f.line("b = %s.AppendString(b, %s)", g.rt, conv(t, "string", x))
	case k == reflect.Slice:
		f.slice(t, x)
	case k == reflect.Array:
		f.list(t, x)
	case k == reflect.Map:
		f.mapValue(t, x)
	case k == reflect.Struct:
		if name, ok := g.funcs[t]; ok {
			f.try(fmt.Sprintf("%s(b, &%s)", name, x))
			return
		}
		g.note("%s (%v): a struct type this file cannot name", f.where, t)
		f.try(fmt.Sprintf("%s.AppendMarshal(b, %s)", g.rt, x))
	case k == reflect.Interface:
		f.iface(t, x)
	default:
		// Channels, functions, complex numbers: encoding/json's error.
		g.note("%s (%v): not a JSON type", f.where, t)
		f.try(fmt.Sprintf("%s.AppendMarshal(b, %s)", g.rt, x))
	}
}

func (f *fn) slice(t reflect.Type, x string) {
	g := f.g
	if e := t.Elem(); e.Kind() == reflect.Uint8 && !implementsMarshaler(reflect.PointerTo(e)) {
		if e.PkgPath() != "" || e.Name() != "uint8" {
			g.note("%s (%v): a slice of a named byte type", f.where, t)
			f.try(fmt.Sprintf("%s.AppendMarshal(b, %s)", g.rt, x))
			return
		}
		// base64, as encoding/json writes a []byte.
		f.line("b = %s.AppendBytes(b, %s)", g.rt, x)
		return
	}
	f.line("if %s == nil {", x)
	f.appendLit("null")
	f.line("} else {")
	f.list(t, x)
	f.line("}")
}

// list writes the elements of slice or array x.
func (f *fn) list(t reflect.Type, x string) {
	f.depth++
	i := "i" + strconv.Itoa(f.depth)
	f.line("b = append(b, '[')")
	f.line("for %s := range %s {", i, x)
	f.line("if %s > 0 {", i)
	f.line("b = append(b, ',')")
	f.line("}")
	f.value(t.Elem(), x+"["+i+"]")
	f.line("}")
	f.line("b = append(b, ']')")
}

func (f *fn) mapValue(t reflect.Type, x string) {
	g := f.g
	if t.Key().Kind() != reflect.String {
		// Numbers and TextMarshalers as keys: left to json.Marshal.
		g.note("%s (%v): keys that are not strings", f.where, t)
		f.try(fmt.Sprintf("%s.AppendMarshal(b, %s)", g.rt, x))
		return
	}
	f.depth++
	d := strconv.Itoa(f.depth)
	f.line("if %s == nil {", x)
	f.appendLit("null")
	f.line("} else {")
	f.line("b = append(b, '{')")
	buf := "nil"
	if kt := t.Key(); (kt.PkgPath() == "" && kt.Name() == "string") || g.nameable(kt) {
		// Keys sorted on the stack, for maps of up to 16 entries.
		f.line("var kb%s [16]%s", d, f.typeExpr(kt))
		buf = "kb" + d + "[:0]"
	}
	f.line("for n%s, k%s := range %s.SortedKeys(%s, %s) {", d, d, g.rt, buf, x)
	f.line("if n%s > 0 {", d)
	f.line("b = append(b, ',')")
	f.line("}")
	f.line("b = %s.AppendString(b, %s)", g.rt, conv(t.Key(), "string", "k"+d))
	f.line("b = append(b, ':')")
	elem := x + "[k" + d + "]"
	if _, ok := g.funcs[t.Elem()]; ok {
		// A map's value is not addressable: a copy is.
		f.line("m%s := %s", d, elem)
		elem = "m" + d
	}
	f.value(t.Elem(), elem)
	f.line("}")
	f.line("b = append(b, '}')")
	f.line("}")
}

func (f *fn) typeExpr(t reflect.Type) string {
	if t.PkgPath() == "" {
		return t.Name()
	}
	return f.g.typeName(t)
}

// iface writes interface value x: the types with a function here by
// their function, any other by json.Marshal.
func (f *fn) iface(t reflect.Type, x string) {
	g := f.g
	f.depth++
	y := "x" + strconv.Itoa(f.depth)
	f.line("switch %s := %s.(type) {", y, x)
	f.line("case nil:")
	f.appendLit("null")
	for _, st := range g.order {
		name := g.funcs[st]
		if st.Implements(t) {
			f.line("case %s:", g.typeName(st))
			f.try(fmt.Sprintf("%s(b, &%s)", name, y))
		}
		if reflect.PointerTo(st).Implements(t) {
			f.line("case *%s:", g.typeName(st))
			f.line("if %s == nil {", y)
			f.appendLit("null")
			f.line("} else {")
			f.try(fmt.Sprintf("%s(b, %s)", name, y))
			f.line("}")
		}
	}
	f.line("default:")
	f.try(fmt.Sprintf("%s.AppendMarshal(b, %s)", g.rt, y))
	f.line("}")
	g.note("%s (%v): values of types without a function here", f.where, t)
}
