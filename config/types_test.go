package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// scalar parses a one-value YAML document, so tests see the same tags
// (!!int, !!str ...) the config decoder sees.
func scalar(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml %q: %v", src, err)
	}
	return doc.Content[0]
}

func TestDurationUnmarshal(t *testing.T) {
	tests := []struct {
		src     string
		want    time.Duration
		wantErr string
	}{
		{src: "30s", want: 30 * time.Second},
		{src: "5m", want: 5 * time.Minute},
		{src: "1h30m", want: 90 * time.Minute},
		{src: "0s", want: 0},
		{src: `"250ms"`, want: 250 * time.Millisecond},
		// Days, for the long lifetimes (greylist.pass_lifetime): Go's
		// own syntax stops at hours.
		{src: "36d", want: 36 * 24 * time.Hour},
		{src: "1d12h", want: 36 * time.Hour},
		{src: "2d30m", want: 48*time.Hour + 30*time.Minute},
		{src: "d", wantErr: `got "d"`},
		{src: "1.5d", wantErr: `got "1.5d"`},
		{src: "-1d", wantErr: `got "-1d"`},
		{src: "1d-1h", wantErr: `got "1d-1h"`},
		{src: "99999999d", wantErr: `got "99999999d"`},
		{src: "30", wantErr: "got 30 (a number needs a unit)"},
		{src: "-1s", wantErr: `expected a non-negative duration, got "-1s"`},
		{src: "soon", wantErr: `got "soon"`},
		{src: "[1s]", wantErr: "got a list"},
		{src: "true", wantErr: "got a boolean"},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalYAML(scalar(t, tt.src))
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Duration(%s) error = %v, want containing %q", tt.src, err, tt.wantErr)
			}
		case err != nil || d.Duration != tt.want:
			t.Errorf("Duration(%s) = %v, %v; want %v", tt.src, d.Duration, err, tt.want)
		}
	}
}

func TestByteSizeUnmarshal(t *testing.T) {
	tests := []struct {
		src     string
		want    ByteSize
		wantErr string
	}{
		{src: "26214400", want: 26214400},
		{src: "0", want: 0},
		{src: `"1024"`, want: 1024},
		{src: "1MiB", want: 1 << 20},
		{src: "512KiB", want: 512 << 10},
		{src: "25MB", want: 25_000_000},
		{src: "1GiB", want: 1 << 30},
		{src: "2 tib", want: 2 << 40},
		{src: "10kb", want: 10_000},
		{src: "7B", want: 7},
		{src: "-1", wantErr: "expected a non-negative size, got -1"},
		{src: "-1MiB", wantErr: `expected a non-negative size, got "-1MiB"`},
		{src: "1.5MiB", wantErr: `got "1.5MiB"`},
		{src: "1.5", wantErr: "or 25MB, got 1.5"},
		{src: "MiB", wantErr: `got "MiB"`},
		{src: "12 bananas", wantErr: `got "12 bananas"`},
		{src: "9999999TiB", wantErr: "too large"},
		{src: "99999999999999999999", wantErr: "or 25MB, got 99999999999999999999"},
		{src: "true", wantErr: "got a boolean"},
		{src: "{a: 1}", wantErr: "got a mapping"},
	}
	for _, tt := range tests {
		var b ByteSize
		err := b.UnmarshalYAML(scalar(t, tt.src))
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ByteSize(%s) error = %v, want containing %q", tt.src, err, tt.wantErr)
			}
		case err != nil || b != tt.want:
			t.Errorf("ByteSize(%s) = %d, %v; want %d", tt.src, b, err, tt.want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for b, want := range map[ByteSize]string{0: "0", 1000: "1000", KiB: "1KiB", 25 * MiB: "25MiB", 3 * GiB: "3GiB", 1<<40 + 1: "1099511627777"} {
		if got := b.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(b), got, want)
		}
	}
}

// TestMarshalRoundTrip checks a Config dumped with yaml.Marshal parses back
// to the same value, so a future "print effective config" is faithful.
func TestMarshalRoundTrip(t *testing.T) {
	c, err := Parse("config.yaml", []byte(issueExample))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse("dump.yaml", out)
	if err != nil {
		t.Fatalf("re-parse of dump:\n%s\n%v", out, err)
	}
	if !reflect.DeepEqual(c2.Limits, c.Limits) || c2.Backend != c.Backend || c2.DrainTimeout != c.DrainTimeout {
		t.Errorf("round trip changed the config:\n%s", out)
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", time.Second: "1s", time.Minute: "1m", 90 * time.Second: "1m30s",
		time.Hour: "1h", time.Hour + time.Second: "1h0m1s", 25 * time.Hour: "25h", 500 * time.Millisecond: "500ms"} {
		got := Dur(d).String()
		if got != want {
			t.Errorf("Dur(%v).String() = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != d {
			t.Errorf("%q parses back as %v, %v", got, back, err)
		}
	}
	// Whole days of two or more are written in days, which the loader
	// reads back.
	for d, want := range map[time.Duration]string{48 * time.Hour: "2d", 36 * 24 * time.Hour: "36d", 24 * time.Hour: "24h", 49 * time.Hour: "49h"} {
		got := Dur(d).String()
		if got != want {
			t.Errorf("Dur(%v).String() = %q, want %q", d, got, want)
		}
		var back Duration
		if err := back.UnmarshalYAML(scalar(t, got)); err != nil || back.Duration != d {
			t.Errorf("%q loads back as %v, %v", got, back.Duration, err)
		}
	}
}
