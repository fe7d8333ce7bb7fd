package mime

// The mime section of the configuration file. It is declared here, beside
// the check it configures; the config package holds a field of this type
// and calls Validate, and this package does not import config.

import (
	"errors"
	"os"

	"mxguard/internal/confval"
	"mxguard/internal/yamlpos"
)

// The defaults of the mime section. They are far above what real mail
// needs (a message with a few dozen parts, archives of a few hundred
// files) and low enough that a crafted message cannot make the walk cost
// more than a normal one by orders of magnitude.
const (
	DefaultMaxParts          = 500
	DefaultMaxDepth          = 10
	DefaultMaxDecodedBytes   = 64 << 20
	DefaultMaxArchiveMembers = 1000
)

// Config is the mime section: the bounds of the MIME walk.
type Config struct {
	// MaxParts (max_parts, default DefaultMaxParts, >= 1) is the most
	// MIME parts and archive members looked at in one message.
	MaxParts int `yaml:"max_parts"`
	// MaxDepth (max_depth, default DefaultMaxDepth, >= 1) is the deepest
	// nesting looked into: multiparts, attached messages and archives
	// inside archives each add one.
	MaxDepth int `yaml:"max_depth"`
	// MaxDecodedBytes (max_decoded_bytes, default 64MiB, >= 1MiB) bounds
	// the bytes decoded for one message: transfer encodings undone and
	// archive members inflated (what a zip bomb inflates counts here).
	MaxDecodedBytes confval.ByteSize `yaml:"max_decoded_bytes"`
	// MaxArchiveMembers (max_archive_members, default
	// DefaultMaxArchiveMembers, >= 1) is the most members of one archive
	// looked at.
	MaxArchiveMembers int `yaml:"max_archive_members"`
	// TempDir (temp_dir, default "": the system's, $TMPDIR or /tmp) is
	// where an archive or an Office file bigger than 1MiB is copied for
	// random access (a ZIP's central directory is at its end); the copy
	// is removed when the check ends. Put it beside spool.dir when that
	// is a dedicated file system.
	TempDir string `yaml:"temp_dir" expect:"a directory path"`
}

// DefaultConfig is the section as it is when the file leaves it out.
func DefaultConfig() Config {
	return Config{MaxParts: DefaultMaxParts, MaxDepth: DefaultMaxDepth,
		MaxDecodedBytes: DefaultMaxDecodedBytes, MaxArchiveMembers: DefaultMaxArchiveMembers}
}

// Validate reports, through d and at each key's position, the problems of
// the section decoded at path ("mime"). It changes nothing.
func (c *Config) Validate(d *yamlpos.Decoder, path string) {
	confval.AtLeast(d, path+".max_parts", "an integer", int64(c.MaxParts), 1)
	confval.AtLeast(d, path+".max_depth", "an integer", int64(c.MaxDepth), 1)
	confval.AtLeast(d, path+".max_decoded_bytes", "a size in bytes", int64(c.MaxDecodedBytes), 1<<20)
	confval.AtLeast(d, path+".max_archive_members", "an integer", int64(c.MaxArchiveMembers), 1)
	if n := d.Node(path + ".temp_dir"); n != nil && c.TempDir != "" {
		// Found now rather than at the first archive, where it would
		// make every message with one a temperror.
		if fi, err := os.Stat(c.TempDir); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			d.Errorf(n, "%s.temp_dir: expected an existing directory, got %q (%v)", path, c.TempDir, err)
		} else if !fi.IsDir() {
			d.Errorf(n, "%s.temp_dir: expected an existing directory, got %q which is not a directory", path, c.TempDir)
		}
	}
}

// Options are the walk's options for c.
func (c Config) Options() Options {
	return Options{MaxParts: c.MaxParts, MaxDepth: c.MaxDepth, MaxDecodedBytes: int64(c.MaxDecodedBytes),
		MaxArchiveMembers: c.MaxArchiveMembers, TempDir: c.TempDir}
}
