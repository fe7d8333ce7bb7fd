package harvest

// The harvest section of the configuration file. It is declared here,
// beside the check it configures; the config package holds a field of
// this type and calls Validate, and this package does not import config.

import (
	"time"

	"mxguard/internal/confval"
	"mxguard/internal/yamlpos"
)

// DefaultWindow is how long a client's count of unknown recipients lives
// from its first one. Ten minutes outlast a harvester's run of short
// sessions (one or two guesses each, to stay under the per-session
// count) and are short enough that a real server that met a few stale
// addresses is not held up for long.
const DefaultWindow = 10 * time.Minute

// Config is the harvest section.
type Config struct {
	// Window (window, default DefaultWindow = 10m, > 0) is the period
	// over which a client's unknown recipients are counted
	// (harvest.unknown_rcpts): a fixed window from its first one.
	Window confval.Duration `yaml:"window"`
}

// DefaultConfig is the section as it is when the file leaves it out.
func DefaultConfig() Config { return Config{Window: confval.Dur(DefaultWindow)} }

// Validate reports, through d and at each key's position, the problems of
// the section decoded at path ("harvest"). It changes nothing.
func (c *Config) Validate(d *yamlpos.Decoder, path string) {
	confval.Positive(d, path+".window", c.Window)
}
