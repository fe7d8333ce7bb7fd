package held

// The hold section of the configuration file. It is declared here, beside
// the store it configures, and the config package holds a field of this
// type and calls Normalize and Validate; this package does not import
// config.

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"mxguard/internal/confval"
	"mxguard/internal/yamlpos"
)

// The section's defaults.
const (
	// DefaultDir is hold.dir's default when systemd gives no state
	// directory: beside the state store's default, /var/lib/mxguard.
	DefaultDir = "/var/lib/mxguard/held"
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
	// Dir (dir, default $STATE_DIRECTORY/held, else DefaultDir) holds the
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

// DefaultConfig is the section as it is when the file leaves it out.
func DefaultConfig() Config {
	return Config{Dir: defaultDir(), Keep: confval.Dur(DefaultKeep), MaxBytes: DefaultMaxBytes}
}

// defaultDir is hold.dir's default: "held" in the directory systemd made
// for the service (StateDirectory= sets $STATE_DIRECTORY, a
// colon-separated list whose first is the service's), as state.dir's
// default is that directory itself; else DefaultDir.
func defaultDir() string {
	if d, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); d != "" {
		return filepath.Join(d, "held")
	}
	return DefaultDir
}

// Normalize fills in the defaults of keys written empty.
func (c *Config) Normalize() {
	if c.Dir == "" {
		c.Dir = defaultDir()
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
