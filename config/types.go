package config

import (
	"time"

	"mxguard/internal/confval"
)

// Duration is a non-negative time.Duration written the way Go prints
// durations ("30s", "5m"); see confval.Duration.
type Duration = confval.Duration

// ByteSize is a number of bytes written as an integer or with a unit
// ("25MiB"); see confval.ByteSize.
type ByteSize = confval.ByteSize

// Common sizes, for defaults and tests.
const (
	KiB = confval.KiB
	MiB = confval.MiB
	GiB = confval.GiB
)

// Dur returns a Duration of d, for keyed literals in defaults and tests.
func Dur(d time.Duration) Duration { return confval.Dur(d) }

// ParseByteSize parses the string form of a ByteSize, e.g. "25MiB".
func ParseByteSize(s string) (ByteSize, error) { return confval.ParseByteSize(s) }
