package sample

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"mxguard/internal/jsongen"
)

var update = flag.Bool("update", false, "rewrite sample_json.go (with -tags jsongen)")

func generate(t *testing.T) *jsongen.Result {
	t.Helper()
	res, err := jsongen.Generate(jsongen.Config{Root: reflect.TypeFor[Root](), Func: "appendRoot", Generator: "jsongen", Constraint: "!jsongen"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The committed encoders are what the generator writes for the types now.
func TestGeneratedIsCurrent(t *testing.T) {
	res := generate(t)
	if *update {
		if err := os.WriteFile("sample_json.go", res.Source, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile("sample_json.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, res.Source) {
		t.Fatal("sample_json.go is not what the generator writes: go test -tags jsongen ./internal/jsongen/internal/sample -run TestGeneratedIsCurrent -update")
	}
}

// Each value that json.Marshal writes is listed, and nothing else falls
// back.
func TestFallbacks(t *testing.T) {
	want := []string{
		"sample.Sample.MapInt (map[int]string): keys that are not strings",
		"sample.Sample.MapLevel (map[sample.Level]int): keys that are not strings",
		"sample.Sample.Any (interface {}): values of types without a function here",
		"sample.Sample.AnyList (interface {}): values of types without a function here",
		"sample.Sample.Stringer (fmt.Stringer): values of types without a function here",
		"sample.Sample.Number (json.Number): its own MarshalJSON or MarshalText",
		"sample.Sample.Level (sample.Level): its own MarshalJSON or MarshalText",
		"sample.Sample.Checked (sample.Checked): its own MarshalJSON or MarshalText",
		"sample.Sample.CheckP (*sample.Checked): its own MarshalJSON or MarshalText",
		"sample.Sample.LevelP (*sample.Level): its own MarshalJSON or MarshalText",
		"sample.Sample.Anon (struct { X string }): a struct type this file cannot name",
		"sample.Sample.OEAny (interface {}): values of types without a function here",
		"sample.Zeroish: a field is tagged omitzero",
		`sample.Quoted: a field is tagged ",string"`,
	}
	got := slices.Sorted(slices.Values(generate(t).Fallbacks))
	if slices.Sort(want); !slices.Equal(got, want) {
		t.Errorf("fallbacks:\n got: %q\nwant: %q", got, want)
	}
}

var hostile = []string{
	"", `"q" \b\`, "<script>&amp;</script>", "line\nbreak\r{\"forged\":1}", "\x00\x01\x1f\x7f",
	"\u2028\u2029", "bad \xff\xfe\xc3", "caf\u00e9 \U0001F600",
}

var floats = []float64{0.5, 1e-7, 1e21, -1.25e-300, 123456.789, math.MaxFloat32 * 2, -0.000001, 3}

// compare holds the generated encoder to json.Marshal on r, which must
// encode (or, with fails, must not).
func compare(t *testing.T, r *Root, fails bool) {
	t.Helper()
	want, wantErr := json.Marshal(r)
	if (wantErr != nil) != fails {
		t.Fatalf("encoding/json's error: %v", wantErr)
	}
	got, err := Encode([]byte("x"), r)
	if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("error %v, encoding/json's %v", err, wantErr)
	}
	if err != nil {
		return
	}
	if !bytes.Equal(got, append([]byte("x"), want...)) {
		t.Fatalf("differs from encoding/json:\n got: %s\nwant: x%s", got, want)
	}
}

func anyValue(n int) any {
	f := &jsongen.Filler{Strings: hostile, Floats: floats, Depth: 2}
	switch n % 9 {
	case 0:
		var i Inner
		f.Fill(reflect.ValueOf(&i).Elem())
		return i
	case 1:
		var i Inner
		f.Fill(reflect.ValueOf(&i).Elem())
		return &i
	case 2:
		return (*Inner)(nil)
	case 3:
		return map[string]any{"k<": []any{1.5, "v\n", nil}}
	case 4:
		return "str\u2028" + fmt.Sprint(n)
	case 5:
		var l Leading
		f.Fill(reflect.ValueOf(&l).Elem())
		return l
	case 6:
		return Level(n)
	case 7:
		return nil
	}
	return float64(n) / 3
}

func TestFilledLikeEncodingJSON(t *testing.T) {
	for seed := range 12 {
		var r Root
		f := &jsongen.Filler{Strings: hostile[seed%len(hostile):], Floats: floats[seed%len(floats):], Any: func(n int) any { return anyValue(n + seed) }, Depth: 3}
		f.Fill(reflect.ValueOf(&r).Elem())
		compare(t, &r, false)
	}
}

func TestZeroLikeEncodingJSON(t *testing.T) {
	compare(t, &Root{}, false)
}

func TestEmptyLikeEncodingJSON(t *testing.T) {
	var r Root
	jsongen.Empty(reflect.ValueOf(&r).Elem())
	compare(t, &r, false)
}

func TestPointersLikeEncodingJSON(t *testing.T) {
	var r Root
	jsongen.Pointers(reflect.ValueOf(&r).Elem())
	compare(t, &r, false)
}

// Errors are encoding/json's: a NaN, a time it cannot write.
func TestErrorsLikeEncodingJSON(t *testing.T) {
	var r Root
	r.Sample.F64 = math.NaN()
	compare(t, &r, true)
	r = Root{}
	r.Sample.PStruct = &Inner{Score: math.Inf(-1)}
	compare(t, &r, true)
	r = Root{}
	r.Sample.Number = "not a number"
	compare(t, &r, true)
	r = Root{}
	r.Sample.TimeP = new(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	compare(t, &r, true)
	r = Root{}
	tp := new(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC))
	r.Sample.TimePP = &tp
	compare(t, &r, true)
	r = Root{}
	r.Sample.Checked = -1
	compare(t, &r, true)
	r = Root{}
	r.Sample.CheckP = new(Checked(-1))
	compare(t, &r, true)
}
