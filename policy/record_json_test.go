package policy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"mxguard/checks/rspamd"
	"mxguard/internal/jsongen"
)

// The verdict line's encoder is generated from Record's types
// (internal/genverdict); these tests hold it to encoding/json, which wrote
// the lines before it and whose bytes admins' tools, "mxguard verdicts",
// the console's index and "rules replay" read.

// The committed record_json.go is what genverdict writes for the types as
// they are now: a field added to Record or to any check's facts fails
// here until the file is generated again.
func TestRecordEncoderIsCurrent(t *testing.T) {
	res := generateRecordEncoder(t)
	old, err := os.ReadFile("record_json.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, res.Source) {
		t.Fatal("record_json.go is not what genverdict writes for Record's types now: run go generate ./policy")
	}
}

// generateRecordEncoder generates record_json.go as genverdict does.
func generateRecordEncoder(t *testing.T) *jsongen.Result {
	t.Helper()
	res, err := jsongen.Generate(jsongen.Config{Root: reflect.TypeFor[Record](), Func: "appendRecord", Generator: "genverdict", Constraint: "!jsongen"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Only the per-recipient checks' facts, typed any, may reach json.Marshal
// at run time (and only for a type the generated switch does not know):
// a field of a type the generator leaves to json.Marshal would make every
// line slower again.
func TestRecordEncoderFallbacks(t *testing.T) {
	want := []string{"policy.CheckRecord.Facts (interface {}): values of types without a function here"}
	if got := generateRecordEncoder(t).Fallbacks; !slices.Equal(got, want) {
		t.Errorf("fields written by json.Marshal: %q, want %q", got, want)
	}
}

// hostileStrings are what a client can put in HELO, MAIL FROM, a
// Message-ID or a header that the facts keep.
var hostileStrings = []string{
	`"quoted" \back\slash\`,
	"<script>alert(1)</script> & </x>",
	"line\nbreak\r\n{\"action\":\"accept\"}\n",
	"\x00nul\x01\x07\b\t\v\f\x1b\x1f\x7f",
	"sep\u2028para\u2029",
	"bad utf-8 \xff\xfe\xc3 \xe2\x80 \xed\xa0\x80 \xf4\x90\x80\x80",
	"caf\u00e9 \U0001F600 日本 \ufffd",
	"",
}

// trickyFloats sit on encoding/json's 'f'/'e' boundaries and at the ends
// of float64.
var trickyFloats = []float64{
	0.006, 1.088, -2.5, 1e-6, 9.999999e-7, 1e-7, 1e20, 1e21, 1.5e300, 5e-324,
	math.MaxFloat64, -0.0000015, 123456789.123,
}

// factsValue is the value the filler puts in CheckRecord.Facts: the facts
// of each registered check in turn (as the engine logs a per-recipient
// check's), a pointer to them, facts read back from a line (a map), nil.
func factsValue(n int) any {
	f := &jsongen.Filler{Strings: hostileStrings, Floats: trickyFloats, Depth: 3}
	if n%4 == 3 {
		return map[string]any{"state<": "new\u2028", "wait": 1.5e-7, "list": []any{nil, true}}
	}
	if n%4 == 2 {
		return nil
	}
	r := registry[(n/4)%len(registry)]
	v := reflect.New(reflect.TypeFor[Found]().Field(r.field).Type)
	f.Fill(v.Elem())
	if n%4 == 1 {
		return v.Interface()
	}
	return v.Elem().Interface()
}

// compareRecord holds appendRecord to json.Marshal on r, which must
// encode, and returns the line.
func compareRecord(t *testing.T, r *Record) []byte {
	t.Helper()
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	got, err := appendRecord([]byte("prefix"), r)
	if err != nil {
		t.Fatalf("appendRecord: %v", err)
	}
	if !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("the verdict line differs from encoding/json's:\n got: %s\nwant: prefix%s", got, want)
	}
	return got[len("prefix"):]
}

// Every field of Record and of every type it reaches, set to a value of
// its own (hostile strings, floats on the format's boundaries, times in
// several zones), comes out as encoding/json writes it, on one line.
func TestRecordFilledLikeEncodingJSON(t *testing.T) {
	for seed := range len(hostileStrings) * 2 {
		var r Record
		f := &jsongen.Filler{
			Strings: hostileStrings[seed%len(hostileStrings):],
			Floats:  trickyFloats[seed%len(trickyFloats):],
			Any:     func(n int) any { return factsValue(n + seed) },
		}
		f.Fill(reflect.ValueOf(&r).Elem())
		line := compareRecord(t, &r)
		if bytes.ContainsAny(line, "\n\r\u2028\u2029") || !json.Valid(line) {
			t.Fatalf("not one valid JSON line: %q", line)
		}
	}
}

// Every registered check's facts in a per-recipient entry of the line, as
// a value (as the engine logs them), through a pointer, and as a nil
// pointer, filled and zero.
func TestRecordCheckFactsLikeEncodingJSON(t *testing.T) {
	for _, reg := range registry {
		typ := reflect.TypeFor[Found]().Field(reg.field).Type
		filled := reflect.New(typ)
		(&jsongen.Filler{Strings: hostileStrings, Floats: trickyFloats}).Fill(filled.Elem())
		for _, facts := range []any{
			filled.Elem().Interface(), filled.Interface(),
			reflect.Zero(typ).Interface(), reflect.Zero(reflect.PointerTo(typ)).Interface(),
		} {
			compareRecord(t, &Record{Checks: map[string]CheckRecord{reg.name + " <a@example.org>": {Result: "pass", Facts: facts}}})
		}
	}
}

// A record with nothing set; one whose pointers point at zero values, with
// nil slices and maps; one whose slices and maps are empty rather than
// nil: null against [] and {}, as encoding/json writes them.
func TestRecordZeroLikeEncodingJSON(t *testing.T) {
	compareRecord(t, &Record{})
	var r Record
	jsongen.Pointers(reflect.ValueOf(&r).Elem())
	compareRecord(t, &r)
	r = Record{}
	jsongen.Empty(reflect.ValueOf(&r).Elem())
	compareRecord(t, &r)
	compareRecord(t, &Record{Checks: map[string]CheckRecord{"a": {}, "b": {Facts: (*Facts)(nil)}}, Rules: []RuleMatch{{}}})
}

// The verdict lines of the tests' fixtures, read and written again.
func TestRecordFixturesLikeEncodingJSON(t *testing.T) {
	files := []string{filepath.Join("testdata", "verdict-line.json"), filepath.Join("..", "cmd", "mxguard", "testdata", "verdicts", "sample.jsonl")}
	n := 0
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			compareRecord(t, &r)
			n++
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n < 10 {
		t.Fatalf("%d fixture lines read", n)
	}
}

// What encoding/json cannot write, the generated encoder refuses with
// encoding/json's error, and Write writes nothing: a NaN score, an
// infinite duration, a time RFC 3339 cannot hold.
func TestRecordErrorsLikeEncodingJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.jsonl")
	l, err := OpenVerdictLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, r := range []*Record{
		{Score: math.NaN()},
		{Checks: map[string]CheckRecord{"spf": {DurationMS: math.Inf(1)}}},
		{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Facts: &Facts{Found: Found{Rspamd: rspamd.Facts{Required: math.Inf(-1)}}}},
		{Checks: map[string]CheckRecord{"greylist <a@b>": {Facts: map[string]any{"x": math.NaN()}}}},
	} {
		_, wantErr := json.Marshal(r)
		_, err := appendRecord(nil, r)
		if wantErr == nil || err == nil || err.Error() != wantErr.Error() {
			t.Errorf("appendRecord error = %v, encoding/json's %v", err, wantErr)
		}
		if err := l.Write(r); err == nil {
			t.Errorf("Write(%+v) = nil, want an error", r)
		}
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("the verdict log holds %q after failed writes", b)
	}
}

// FuzzAppendRecord puts the fuzzer's strings where a client's go (and in
// map keys), and its floats in the scores and durations, and holds the
// line to encoding/json's.
func FuzzAppendRecord(f *testing.F) {
	for i, s := range hostileStrings {
		f.Add(s, hostileStrings[(i+1)%len(hostileStrings)], trickyFloats[i], trickyFloats[i+1])
	}
	line, err := os.ReadFile(filepath.Join("testdata", "verdict-line.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s1, s2 string, x1, x2 float64) {
		r := new(Record)
		if err := json.Unmarshal(line, r); err != nil {
			t.Fatal(err)
		}
		r.HELO, r.MailFrom, r.MessageID = s1, s2, s1+s2
		r.Rcpts = append(r.Rcpts, s2)
		r.Refused = []RcptRefusal{{Rcpt: s1, Reply: s2}}
		r.Score = x1
		r.Checks[s1] = CheckRecord{Result: s2, Detail: s1, DurationMS: x2, Facts: map[string]any{s2: x1}}
		r.Rules = []RuleMatch{{Name: s2, Score: x2, Rcpt: s1}}
		r.Facts.Headers.Subject, r.Facts.Headers.FromDisplay = s1, s2
		r.Facts.DNSBL.Listed = []string{s1, s2}
		r.Facts.DNSBL.Score = x2
		r.Facts.Checks[s2] = CheckFacts{Result: s1, Detail: s2}
		want, wantErr := json.Marshal(r)
		got, err := appendRecord(nil, r)
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Fatalf("error %v, encoding/json's %v", err, wantErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("the verdict line differs from encoding/json's:\n got: %s\nwant: %s", got, want)
		}
		if err == nil && bytes.ContainsAny(got, "\n\r") {
			t.Fatalf("a line break in the line: %q", got)
		}
	})
}

// BenchmarkVerdictLine is one verdict line of an accepted message with
// every check run: encoded by encoding/json (as before), by the generated
// encoder, and encoded and written to a file by VerdictLog.Write.
func BenchmarkVerdictLine(b *testing.B) {
	r := sampleRecord(b)
	b.Run("encode=json", func(b *testing.B) {
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := json.NewEncoder(&buf).Encode(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode=generated", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = appendRecord(buf[:0], r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write", func(b *testing.B) {
		l, err := OpenVerdictLog(filepath.Join(b.TempDir(), "v.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		b.ReportAllocs()
		for b.Loop() {
			if err := l.Write(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
