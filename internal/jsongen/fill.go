package jsongen

import (
	"reflect"
	"strconv"
	"time"
)

// Filler sets every field that encoding/json writes, through every
// pointer, slice, map and embedded struct, to a value of its own: the
// tests that hold generated encoders to encoding/json fill a value with
// it, so that a field added to any type tomorrow is covered without a
// change to them.
type Filler struct {
	// Strings are used in turn, each with the count of values filled so
	// far appended, so that no two fields hold the same string; they
	// should hold what a client could send.
	Strings []string
	// Floats are used in turn.
	Floats []float64
	// Any, when set, gives the value of an interface field; a value that
	// does not implement the field's interface leaves it nil.
	Any func(n int) any
	// Depth bounds how far pointers, slices and maps are followed, for
	// types that reach themselves; 0 is 8.
	Depth int

	n int
}

// Fill sets v, which must be settable, and everything it reaches.
func (f *Filler) Fill(v reflect.Value) {
	depth := f.Depth
	if depth == 0 {
		depth = 8
	}
	f.fill(v, depth)
}

var zones = []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("W", -(3*3600 + 7*60))}

func (f *Filler) fill(v reflect.Value, depth int) {
	f.n++
	n := f.n
	t := v.Type()
	switch t {
	case timeType:
		v.Set(reflect.ValueOf(time.Unix(int64(n)*86_400_013, int64(n)*7_919_017).In(zones[n%len(zones)])))
		return
	case numberType:
		// A json.Number must read as a number, or encoding fails.
		v.SetString(strconv.Itoa(n) + ".5e-3")
		return
	}
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := int64(n) * 1_000_003
		if n%2 == 1 {
			x = -x
		}
		if v.OverflowInt(x) {
			x = int64(n%100 + 1)
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		x := uint64(n) * 1_000_003
		if v.OverflowUint(x) {
			x = uint64(n%200 + 1)
		}
		v.SetUint(x)
	case reflect.Float32, reflect.Float64:
		x := float64(n) + 0.5
		if len(f.Floats) > 0 {
			x = f.Floats[n%len(f.Floats)]
		}
		if v.OverflowFloat(x) {
			x = float64(n) / 8
		}
		v.SetFloat(x)
	case reflect.String:
		s := "s"
		if len(f.Strings) > 0 {
			s = f.Strings[n%len(f.Strings)]
		}
		v.SetString(s + strconv.Itoa(n))
	case reflect.Pointer:
		if depth > 0 {
			p := reflect.New(t.Elem())
			f.fill(p.Elem(), depth-1)
			v.Set(p)
		}
	case reflect.Slice:
		if depth > 0 {
			s := reflect.MakeSlice(t, 2, 2)
			for i := range s.Len() {
				f.fill(s.Index(i), depth-1)
			}
			v.Set(s)
		}
	case reflect.Array:
		for i := range v.Len() {
			f.fill(v.Index(i), depth)
		}
	case reflect.Map:
		if depth > 0 {
			m := reflect.MakeMap(t)
			for range 2 {
				k := reflect.New(t.Key()).Elem()
				f.fill(k, depth-1)
				e := reflect.New(t.Elem()).Elem()
				f.fill(e, depth-1)
				m.SetMapIndex(k, e)
			}
			v.Set(m)
		}
	case reflect.Struct:
		for i := range t.NumField() {
			if fv := v.Field(i); fv.CanSet() {
				f.fill(fv, depth)
			}
		}
	case reflect.Interface:
		if f.Any == nil {
			return
		}
		if x := reflect.ValueOf(f.Any(n)); x.IsValid() && x.Type().Implements(t) {
			v.Set(x)
		}
	}
}

// Empty sets v, which must be settable, to its emptiest value that is not
// its zero value: pointers to values set by Empty, empty slices and maps
// rather than nil ones. (encoding/json writes [] and {} for those, null for
// nil ones.)
func Empty(v reflect.Value) { empty(v, 8, true) }

// Pointers sets every pointer v reaches to a value set by Pointers, and
// leaves everything else zero: the nil slices and maps inside structs
// that are written (null where Empty's give [] and {}).
func Pointers(v reflect.Value) { empty(v, 8, false) }

func empty(v reflect.Value, depth int, lists bool) {
	t := v.Type()
	switch t.Kind() {
	case reflect.Pointer:
		if depth > 0 {
			p := reflect.New(t.Elem())
			empty(p.Elem(), depth-1, lists)
			v.Set(p)
		}
	case reflect.Slice:
		if lists {
			v.Set(reflect.MakeSlice(t, 0, 0))
		}
	case reflect.Map:
		if lists {
			v.Set(reflect.MakeMap(t))
		}
	case reflect.Array:
		for i := range v.Len() {
			empty(v.Index(i), depth, lists)
		}
	case reflect.Struct:
		if t == timeType {
			return
		}
		for i := range t.NumField() {
			if fv := v.Field(i); fv.CanSet() {
				empty(fv, depth, lists)
			}
		}
	}
}
