package config

import (
	"reflect"
	"strings"
	"testing"

	"mxguard/internal/yamlpos"
)

// TestEnumKeys: each key with a closed set of values rejects any other
// value with the set, listed from the constants of the key's type.
func TestEnumKeys(t *testing.T) {
	base := "hostname: mx.example.org\nlisten: [{address: \"127.0.0.1:2525\"}]\ndomains: [example.org]\n"
	for _, tc := range []struct{ yaml, want string }{
		{yaml: "backend: {address: \"127.0.0.1:25\", protocol: x}", want: `backend.protocol: expected smtp or lmtp, got "x"`},
		{yaml: "backend: {address: \"127.0.0.1:25\", starttls: x}", want: `backend.starttls: expected none, opportunistic or required, got "x"`},
		{yaml: "backend: {address: \"127.0.0.1:25\", forward_client: x}", want: `backend.forward_client: expected auto, xclient, xforward or none, got "x"`},
		{yaml: "backend: {address: \"127.0.0.1:25\"}\nrecipients: {verify: x}", want: `recipients.verify: expected none, backend, file or both, got "x"`},
		{yaml: "backend: {address: \"127.0.0.1:25\"}\nlog: {format: x}", want: `log.format: expected text or json, got "x"`},
		{yaml: "backend: {address: \"127.0.0.1:25\"}\nlog: {level: x}", want: `log.level: expected debug, info, warn or error, got "x"`},
	} {
		_, err := Parse("config.yaml", []byte(base+tc.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), ": "+tc.want) || strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("%s: got %v, want one error %q", tc.yaml, err, tc.want)
		}
	}
}

// TestEnumsAreTypes: every string-valued key of a named type declares its
// set on the type (yamlpos.Enum), and none spells it again in an enum tag,
// so the values the loader accepts cannot drift from the constants the
// code switches on.
func TestEnumsAreTypes(t *testing.T) {
	enum := reflect.TypeFor[yamlpos.Enum]()
	seen := map[reflect.Type]bool{}
	var walk func(t2 reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			key := path + f.Tag.Get("yaml")
			if tag := f.Tag.Get("enum"); tag != "" {
				t.Errorf("%s: enum tag %q: declare the set on the field's type (yamlpos.Enum)", key, tag)
			}
			if f.Type.Kind() == reflect.String && f.Type.Name() != "string" && !f.Type.Implements(enum) {
				t.Errorf("%s: type %s is a named string type without EnumValues", key, f.Type)
			}
			walk(f.Type, key+".")
		}
	}
	walk(reflect.TypeFor[Config](), "")
	n := 0
	for typ := range seen {
		for i := range typ.NumField() {
			if typ.Field(i).Type.Implements(enum) {
				n++
			}
		}
	}
	if n != 6 {
		t.Errorf("found %d enum keys, want 6 (protocol, starttls, forward_client, verify, format, level)", n)
	}
}
