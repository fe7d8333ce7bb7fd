package jsongen

import (
	"cmp"
	"reflect"
	"slices"
	"strings"
	"unicode"
)

// field is one member of a struct's JSON object, as encoding/json finds
// it: the rules below are encoding/json's typeFields, so that the
// generated encoders write the same names, in the same order, with the
// same winners of name conflicts between embedded structs.
type field struct {
	name      string
	tag       bool  // the name came from a json tag
	index     []int // the path of field indexes, through embedded structs
	omitEmpty bool
	omitZero  bool
	quoted    bool         // the ",string" option, on a kind it applies to
	typ       reflect.Type // while exploring: the embedded struct's type
}

// typeFields returns the fields of struct type t that encoding/json
// writes, in the order it writes them.
func typeFields(t reflect.Type) []field {
	// Anonymous structs to explore at the current level and the next.
	var current []field
	next := []field{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	var fields []field

	for len(next) > 0 {
		current, next = next, nil
		count, nextCount = nextCount, map[reflect.Type]int{}

		for _, f := range current {
			ft0 := f.typ
			if visited[ft0] {
				continue
			}
			visited[ft0] = true
			for i := range ft0.NumField() {
				sf := ft0.Field(i)
				if sf.Anonymous {
					et := sf.Type
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					// Embedded fields of unexported non-struct types are
					// ignored; unexported struct types may still promote
					// exported fields.
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !isValidTag(name) {
					name = ""
				}
				index := append(slices.Clone(f.index), i)

				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				quoted := false
				if hasOption(opts, "string") {
					switch ft.Kind() {
					case reflect.Bool,
						reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
						reflect.Float32, reflect.Float64,
						reflect.String:
						quoted = true
					}
				}

				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					tagged := name != ""
					if name == "" {
						name = sf.Name
					}
					fields = append(fields, field{
						name:      name,
						tag:       tagged,
						index:     index,
						omitEmpty: hasOption(opts, "omitempty"),
						omitZero:  hasOption(opts, "omitzero"),
						quoted:    quoted,
					})
					if count[ft0] > 1 {
						// A struct embedded twice at one level: a second
						// copy makes the conflict below annihilate it.
						fields = append(fields, fields[len(fields)-1])
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, field{name: ft.Name(), index: index, typ: ft})
				}
			}
		}
	}

	slices.SortFunc(fields, func(a, b field) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.index), len(b.index)); c != 0 {
			return c
		}
		if a.tag != b.tag {
			if a.tag {
				return -1
			}
			return +1
		}
		return slices.Compare(a.index, b.index)
	})

	// Go's rules for embedded fields, except that tagged names are
	// promoted: for each name, the shallowest field wins, a tagged one
	// before an untagged one at its depth; two at the same depth with
	// the same taggedness hide each other and the name is not written.
	out := fields[:0]
	for advance, i := 0, 0; i < len(fields); i += advance {
		name := fields[i].name
		for advance = 1; i+advance < len(fields) && fields[i+advance].name == name; advance++ {
		}
		same := fields[i : i+advance]
		if len(same) > 1 && len(same[0].index) == len(same[1].index) && same[0].tag == same[1].tag {
			continue
		}
		out = append(out, same[0])
	}
	slices.SortFunc(out, func(a, b field) int { return slices.Compare(a.index, b.index) })
	return out
}

// isValidTag is encoding/json's test of a tag name: one it rejects makes
// the field use its Go name.
func isValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
			// Backslash and quote are reserved; other punctuation is
			// allowed.
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// hasOption reports whether the comma-separated options list opts holds
// name.
func hasOption(opts, name string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == name {
			return true
		}
	}
	return false
}

// htmlEscapedName is a field name as encoding/json writes it with HTML
// escaping: '<', '>', '&', U+2028 and U+2029 as \u escapes (a valid tag
// name has no other character that needs one).
func htmlEscapedName(name string) string {
	var b strings.Builder
	const hex = "0123456789abcdef"
	for _, r := range name {
		switch r {
		case '<', '>', '&', '\u2028', '\u2029':
			b.WriteString(`\u`)
			b.WriteByte(hex[r>>12&0xf])
			b.WriteByte(hex[r>>8&0xf])
			b.WriteByte(hex[r>>4&0xf])
			b.WriteByte(hex[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
