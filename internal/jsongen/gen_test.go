package jsongen

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

type ptrMarshaler struct{ X int }

func (*ptrMarshaler) MarshalJSON() ([]byte, error) { return []byte("1"), nil }

type withPtrMarshaler struct {
	Inner []ptrMarshaler `json:"inner"`
}

type withMarshalerIface struct {
	M json.Marshaler `json:"m"`
}

// The generator refuses what it could not write as encoding/json does,
// naming the type, rather than write code that differs.
func TestRefuses(t *testing.T) {
	for _, tc := range []struct {
		root reflect.Type
		want string
	}{
		{reflect.TypeFor[withPtrMarshaler](), "jsongen.ptrMarshaler has MarshalJSON or MarshalText on its pointer only"},
		{reflect.TypeFor[withMarshalerIface](), "interface json.Marshaler has MarshalJSON or MarshalText"},
		{reflect.TypeFor[int](), "the root must be a named struct type"},
		{reflect.TypeFor[*withPtrMarshaler](), "the root must be a named struct type"},
	} {
		_, err := Generate(Config{Root: tc.root, Func: "appendX", Generator: "test"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Generate(%v) error = %v, want %q", tc.root, err, tc.want)
		}
	}
}

func TestImportable(t *testing.T) {
	for _, tc := range []struct {
		from, p string
		want    bool
	}{
		{"mxguard/policy", "mxguard/checks/spf", true},
		{"mxguard/policy", "mxguard/internal/mailhdr", true},
		{"mxguard/policy", "mxguard/checks/internal/x", false},
		{"mxguard/checks/spf", "mxguard/checks/internal/x", true},
		{"mxguard/checks", "mxguard/checks/internal", true},
		{"mxguard/policy", "mxguard/checks/internal", false},
		{"mxguard/policy", "internal/abi", false},
		{"mxguard/policy", "time", true},
	} {
		if got := importable(tc.from, tc.p); got != tc.want {
			t.Errorf("importable(%q, %q) = %v, want %v", tc.from, tc.p, got, tc.want)
		}
	}
}
