package confval

import (
	"slices"
	"testing"
)

// TestEnumValues: the loader's set of each shared enum is its constants,
// in the order error messages list them.
func TestEnumValues(t *testing.T) {
	if got := StartTLSNone.EnumValues(); !slices.Equal(got, []string{"none", "opportunistic", "required"}) {
		t.Errorf("StartTLSMode: %q", got)
	}
	if got := HandOverAuto.EnumValues(); !slices.Equal(got, []string{"auto", "xclient", "xforward", "none"}) {
		t.Errorf("HandOver: %q", got)
	}
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{in: []string{"a"}, want: "a"},
		{in: []string{"a", "b"}, want: "a or b"},
		{in: []string{"a", "b", "c"}, want: "a, b or c"},
	} {
		if got := OrList(tc.in); got != tc.want {
			t.Errorf("OrList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
