package held

// The hold section of the configuration file. It is declared here, beside
// the store it configures, and the config package holds a field of this
// type and calls Normalize and Validate; this package does not import
// config.

import (
	"os"
	"path/filepath"
	"time"

	"mxguard/internal/confval"
	"mxguard/internal/yamlpos"
)

// The section's defaults.
const (
	// DefaultKeep is how long held mail is kept: long enough for an admin
	// back from a holiday, short enough that a forgotten store does not
	// keep mail for ever.
	DefaultKeep = 30 * 24 * time.Hour
	// DefaultMaxBytes bounds the store; past it a message a rule holds
	// gets 451 and the sender retries later.
	DefaultMaxBytes = 10 * confval.GiB
)

// Config is the hold section.
type Config struct {
	// Dir (dir, default "held" in state.dir, which the config package
	// fills in: this package knows nothing of the state store) holds the
	// held messages, their metadata and the control socket of release.
	// serve creates it when missing.
	Dir string `yaml:"dir" expect:"a directory path"`
	// Keep (keep, default DefaultKeep = 30d, > 0) is how long a held
	// message (released or not) is kept; older ones are deleted.
	Keep confval.Duration `yaml:"keep"`
	// MaxBytes (max_bytes, default DefaultMaxBytes = 10GiB, >= 1) bounds
	// what the held messages take on disk together.
	MaxBytes confval.ByteSize `yaml:"max_bytes"`
}

// DefaultConfig is the section as it is when the file leaves it out; Dir
// is left empty for the caller to derive (see Config.Dir).
func DefaultConfig() Config {
	return Config{Keep: confval.Dur(DefaultKeep), MaxBytes: DefaultMaxBytes}
}

// Normalize fills in the defaults of keys written empty: Dir becomes
// "held" in stateDir.
func (c *Config) Normalize(stateDir string) {
	if c.Dir == "" {
		c.Dir = filepath.Join(stateDir, "held")
	}
}

// Validate reports, through d and at each key's position, the problems of
// the section decoded at path ("hold"). It changes nothing.
func (c *Config) Validate(d *yamlpos.Decoder, path string) {
	if n := d.Node(path + ".dir"); n != nil {
		if fi, err := os.Stat(c.Dir); err == nil && !fi.IsDir() {
			d.Errorf(n, "%s.dir: expected a directory, got %q which is not one", path, c.Dir)
		}
	}
	confval.Positive(d, path+".keep", c.Keep)
	confval.AtLeast(d, path+".max_bytes", "a size in bytes", int64(c.MaxBytes), 1)
}
