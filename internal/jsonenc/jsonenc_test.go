package jsonenc

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// hostile are strings a client can put in a verdict line (HELO, MAIL
// FROM, Message-ID, header values): each must come out as encoding/json
// writes it.
var hostile = []string{
	"",
	"plain ascii",
	`"quoted" \back\slash\`,
	"<script>alert(1)</script> & more",
	"line\nbreak\r\n{\"forged\":true}",
	"\x00nul\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1b\x1f\x7f",
	"tab\tform\fback\b",
	"sep\u2028para\u2029end",
	"\u2027\u202a near the separators",
	"bad utf-8 \xff\xfe \xc3 \xe2\x80 \xed\xa0\x80 (surrogate) \xf4\x90\x80\x80 (too big)",
	"\xc3\xa9t\xc3\xa9 caf\u00e9 \U0001F600 日本",
	"\ufffd already a replacement",
	strings.Repeat("a\"", 100),
}

func TestAppendString(t *testing.T) {
	for _, s := range hostile {
		want, _ := json.Marshal(s)
		got := AppendString([]byte("prefix"), s)
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("AppendString(%q) = %s, want prefix%s", s, got, want)
		}
		if bytes.ContainsAny(got, "\n\r\u2028\u2029") {
			t.Errorf("AppendString(%q) = %q: a line terminator unescaped", s, got)
		}
	}
}

var floats = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, 1.5, -2.25, 100, 1e6, 123456789,
	1e-6, 9.999999e-7, 1e-7, -1e-7, 1.5e-9, 1e-10, 5e-324, math.SmallestNonzeroFloat64,
	1e20, 999999999999999900000, 1e21, -1e21, 1.2345e21, 1e100, math.MaxFloat64,
	0.000123, 3.14159265358979, 2.5e-300, 0.006, 1.088, 0.174,
	math.MaxFloat32, math.SmallestNonzeroFloat32, 1.1754944e-38,
}

func TestAppendFloat(t *testing.T) {
	for _, f := range floats {
		want, _ := json.Marshal(f)
		got, err := AppendFloat(nil, f, 64)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("AppendFloat(%v, 64) = %s, %v; want %s", f, got, err, want)
		}
		f32 := float32(f)
		if math.IsInf(float64(f32), 0) {
			continue
		}
		want, _ = json.Marshal(f32)
		got, err = AppendFloat(nil, float64(f32), 32)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("AppendFloat(%v, 32) = %s, %v; want %s", f32, got, err, want)
		}
	}
}

// NaN and the infinities have no JSON form: the error is encoding/json's,
// and nothing is appended.
func TestAppendFloatUnsupported(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		_, want := json.Marshal(f)
		got, err := AppendFloat([]byte("x"), f, 64)
		if err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("AppendFloat(%v) error = %v, want %v", f, err, want)
		}
		if string(got) != "x" {
			t.Errorf("AppendFloat(%v) appended %q", f, got)
		}
	}
}

func TestAppendTime(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(2026, 11, 25, 22, 15, 16, 383966550, time.UTC),
		time.Date(2026, 11, 25, 22, 15, 16, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 100, time.FixedZone("", 5*3600+30*60)),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("X", -(9*3600+45*60+30))),
		time.Date(2026, 11, 25, 22, 15, 16, 1, time.Local),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)),
	}
	for _, tm := range times {
		want, wantErr := json.Marshal(tm)
		got, err := AppendTime([]byte("x"), tm)
		switch {
		case wantErr != nil:
			if err == nil || err.Error() != wantErr.Error() || string(got) != "x" {
				t.Errorf("AppendTime(%v) = %q, %v; want error %v", tm, got, err, wantErr)
			}
		case err != nil || string(got) != "x"+string(want):
			t.Errorf("AppendTime(%v) = %q, %v; want x%s", tm, got, err, want)
		}
	}
}

func TestAppendBytes(t *testing.T) {
	for _, p := range [][]byte{nil, {}, {0}, []byte("\xff\xfe<>&\n"), bytes.Repeat([]byte{1, 2, 3}, 50)} {
		want, _ := json.Marshal(p)
		if got := AppendBytes(nil, p); !bytes.Equal(got, want) {
			t.Errorf("AppendBytes(%q) = %s, want %s", p, got, want)
		}
	}
}

func TestSortedKeys(t *testing.T) {
	type name string
	m := map[name]int{"b": 1, "a": 2, "\xff": 3, "B": 4, "": 5, "ab": 6}
	var buf [2]name
	got := SortedKeys(buf[:0], m)
	want := []name{"", "B", "a", "ab", "b", "\xff"}
	if len(got) != len(want) {
		t.Fatalf("SortedKeys = %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("SortedKeys = %q, want %q", got, want)
		}
	}
}

func TestAppendMarshal(t *testing.T) {
	got, err := AppendMarshal([]byte("x"), map[string]any{"<a>": []int{1}})
	if err != nil || string(got) != `x{"\u003ca\u003e":[1]}` {
		t.Errorf("AppendMarshal = %s, %v", got, err)
	}
	got, err = AppendMarshal([]byte("x"), math.NaN())
	if err == nil || string(got) != "x" {
		t.Errorf("AppendMarshal(NaN) = %s, %v; want an error", got, err)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func FuzzAppendFloat(f *testing.F) {
	for _, x := range floats {
		f.Add(math.Float64bits(x))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		x := math.Float64frombits(bits)
		want, wantErr := json.Marshal(x)
		got, err := AppendFloat(nil, x, 64)
		if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("AppendFloat(%v, 64) = %s, %v; want %s, %v", x, got, err, want, wantErr)
		}
		x32 := math.Float32frombits(uint32(bits))
		want, wantErr = json.Marshal(x32)
		got, err = AppendFloat(nil, float64(x32), 32)
		if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("AppendFloat(%v, 32) = %s, %v; want %s, %v", x32, got, err, want, wantErr)
		}
	})
}
