// Package confval holds the value types and checks that configuration
// sections share: durations and byte sizes as the YAML file writes them,
// closed sets of strings (enums), and the positioned range checks. It
// exists so that a section can live beside the package it configures
// (checks/dnsbl, checks/rcpt, checks/headers) without that package
// importing config, which imports them.
package confval

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"mxguard/internal/yamlpos"
)

// Duration is a time.Duration written in YAML the way Go prints durations:
// "30s", "5m", "1h30m", plus a leading count of days ("36d", "1d12h") for
// the lifetimes that are naturally counted in days. A bare number is rejected because "30" could mean
// seconds or milliseconds and guessing wrong silently breaks timeouts.
// Negative durations are rejected: no setting here has a use for them.
type Duration struct {
	time.Duration
}

// Dur returns a Duration of d, for keyed literals in defaults and tests.
func Dur(d time.Duration) Duration {
	return Duration{Duration: d}
}

// UnmarshalYAML implements yaml.Unmarshaler. The error text is phrased to
// follow "path: ", which the positioned decoder prepends.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		return fmt.Errorf("expected a duration like 30s, 5m or 1h30m, got %s (a number needs a unit)", yamlpos.Lit(n.Value))
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return fmt.Errorf("expected a duration like 30s, 5m or 1h30m, got %s", yamlpos.Describe(n))
	}
	v, err := parseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return fmt.Errorf("expected a duration like 30s, 5m or 1h30m, got %q", n.Value)
	}
	if v < 0 {
		return fmt.Errorf("expected a non-negative duration, got %q", n.Value)
	}
	d.Duration = v
	return nil
}

// day is the unit Go's duration syntax lacks.
const day = 24 * time.Hour

// parseDuration is time.ParseDuration with an optional leading whole
// number of days: "36d", "1d12h". A day is 24 hours (no calendar: the
// durations here are lifetimes, not dates).
func parseDuration(s string) (time.Duration, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i == len(s) || s[i] != 'd' {
		return time.ParseDuration(s)
	}
	days, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || days > int64(math.MaxInt64/day) {
		return 0, fmt.Errorf("confval: duration %q out of range", s)
	}
	v := time.Duration(days) * day
	if rest := s[i+1:]; rest != "" {
		if rest[0] == '-' || rest[0] == '+' {
			return 0, fmt.Errorf("confval: duration %q: a sign after the days", s)
		}
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, err
		}
		if r > math.MaxInt64-v {
			return 0, fmt.Errorf("confval: duration %q out of range", s)
		}
		v += r
	}
	return v, nil
}

// MarshalYAML implements yaml.Marshaler so a Config can be dumped back to
// YAML in the form it is read.
func (d Duration) MarshalYAML() (any, error) {
	return d.String(), nil
}

// String is time.Duration's form without the zero units it ends with:
// "1h" rather than "1h0m0s", "5m" rather than "5m0s"; whole days from two
// on in days ("36d" rather than "864h"), which UnmarshalYAML reads back.
func (d Duration) String() string {
	if d.Duration >= 2*day && d.Duration%day == 0 {
		return strconv.FormatInt(int64(d.Duration/day), 10) + "d"
	}
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ByteSize is a number of bytes. In YAML it is a plain integer (26214400)
// or a string with a unit: B, KB/MB/GB/TB (powers of 1000) or
// KiB/MiB/GiB/TiB (powers of 1024), units case-insensitive, an optional
// space allowed ("25 MB"). Fractions and negative sizes are rejected.
type ByteSize int64

// Common sizes, for defaults and tests.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
}

const sizeExpect = "expected a size like 1048576, 512KiB, 1MiB or 25MB"

// ParseByteSize parses the string form of a ByteSize, e.g. "25MiB".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("expected a non-negative size, got %q", s)
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '_') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%s, got %q", sizeExpect, s)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(num, "_", ""), 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%s, got %q which is too large", sizeExpect, s)
	}
	return ByteSize(n * mult), nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s, got %s", sizeExpect, yamlpos.Describe(n))
	}
	switch n.ShortTag() {
	case "!!int":
		var v int64
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("%s, got %s which is out of range", sizeExpect, yamlpos.Lit(n.Value))
		}
		if v < 0 {
			return fmt.Errorf("expected a non-negative size, got %s", yamlpos.Lit(n.Value))
		}
		*b = ByteSize(v)
		return nil
	case "!!str":
		v, err := ParseByteSize(n.Value)
		if err != nil {
			return err
		}
		*b = v
		return nil
	case "!!float":
		// Fractions and integers beyond int64 both resolve as floats.
		return fmt.Errorf("%s, got %s", sizeExpect, yamlpos.Lit(n.Value))
	}
	return fmt.Errorf("%s, got %s", sizeExpect, yamlpos.Describe(n))
}

// String renders the size with the largest binary unit that divides it
// exactly, so defaults print as "25MiB" rather than "26214400".
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		size ByteSize
	}{{name: "TiB", size: 1 << 40}, {name: "GiB", size: GiB}, {name: "MiB", size: MiB}, {name: "KiB", size: KiB}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalYAML implements yaml.Marshaler: a plain integer when no binary
// unit divides the size, else the form with the unit.
func (b ByteSize) MarshalYAML() (any, error) {
	s := b.String()
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	return s, nil
}
