// Package console is mxguard's web console: an embedded web application,
// off by default, in which an admin reads the verdicts, why each was
// reached, and the held mail. Everything it shows comes from hostile mail
// (subjects, display names, file names, HELO names), so every page is
// rendered by html/template, which escapes each value for the context it
// lands in, under a Content-Security-Policy that allows no inline script.
package console

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/argon2"
)

// The argon2id parameters of new hashes: RFC 9106 §4's second recommended
// option (64 MiB, 3 passes), with 2 lanes for a small server. A login
// costs about 50-100 ms of one core, which the login limiter bounds.
const (
	argonKeyLen  = 32
	argonSaltLen = 16
)

// argonParams are the cost parameters of new hashes (a hash keeps its
// own, so changing them leaves the existing ones valid).
var argonParams = struct {
	time, memory uint32 // passes, KiB
	threads      uint8
}{time: 3, memory: 64 * 1024, threads: 2}

// HashPassword returns password's argon2id hash in the PHC string format
// ("$argon2id$v=19$m=65536,t=3,p=2$salt$hash"), as the users file holds it.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("console: salt: %w", err)
	}
	p := argonParams
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// hash is a parsed argon2id hash.
type hash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// maxArgonMemory bounds what a users file may ask of a login (4 GiB would
// let one line of it exhaust the machine).
const maxArgonMemory = 1024 * 1024 // KiB: 1 GiB

// parseHash reads a PHC argon2id string.
func parseHash(s string) (hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return hash{}, errors.New(`expected an argon2id hash like "$argon2id$v=19$m=65536,t=3,p=2$SALT$HASH" (mxguard console adduser writes one)`)
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return hash{}, fmt.Errorf("argon2 version %q: expected v=%d", parts[2], argon2.Version)
	}
	var h hash
	var threads int
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.memory, &h.time, &threads); err != nil {
		return hash{}, fmt.Errorf("argon2 parameters %q: expected m=N,t=N,p=N", parts[3])
	}
	if h.memory < 8 || h.memory > maxArgonMemory || h.time < 1 || h.time > 100 || threads < 1 || threads > 255 {
		return hash{}, fmt.Errorf("argon2 parameters %q out of range (m 8..%d KiB, t 1..100, p 1..255)", parts[3], maxArgonMemory)
	}
	h.threads = uint8(threads)
	enc := base64.RawStdEncoding
	var err error
	if h.salt, err = enc.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return hash{}, errors.New("argon2 salt: expected unpadded base64 of at least 8 bytes")
	}
	if h.key, err = enc.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return hash{}, errors.New("argon2 hash: expected unpadded base64 of 16 to 64 bytes")
	}
	return h, nil
}

// matches reports whether password hashes to h, in time that does not
// depend on where they differ.
func (h hash) matches(password string) bool {
	key := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// Users are the console's accounts: names and password hashes, read from
// console.users_file, one "name:hash" per line; # starts a comment.
type Users struct {
	hashes map[string]hash
	// decoy is checked for an unknown name, so that a login for a name
	// that does not exist takes as long as one that does.
	decoy hash
}

// maxUsersFile bounds the users file read into memory.
const maxUsersFile = 1 << 20

// LoadUsers reads the users file at path. Errors name the file and line.
func LoadUsers(path string) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("console: users file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxUsersFile+1))
	if err != nil {
		return nil, fmt.Errorf("console: users file: %w", err)
	}
	if len(b) > maxUsersFile {
		return nil, fmt.Errorf("console: users file %s: larger than %d bytes", path, maxUsersFile)
	}
	return parseUsers(path, b)
}

// parseUsers reads a users file's content; name is its path, for errors.
func parseUsers(name string, b []byte) (*Users, error) {
	u := &Users{hashes: map[string]hash{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxUsersFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, h, ok := strings.Cut(line, ":")
		if err := validUserName(user); !ok || err != nil {
			if err == nil {
				err = errors.New(`expected "name:hash"`)
			}
			return nil, fmt.Errorf("%s:%d:1: %w", name, n, err)
		}
		if _, dup := u.hashes[user]; dup {
			return nil, fmt.Errorf("%s:%d:1: user %q is listed twice", name, n, user)
		}
		parsed, err := parseHash(h)
		if err != nil {
			return nil, fmt.Errorf("%s:%d:%d: %w", name, n, len(user)+2, err)
		}
		u.hashes[user] = parsed
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(u.hashes) == 0 {
		return nil, fmt.Errorf("%s: no users (add one with mxguard console adduser)", name)
	}
	decoy, err := HashPassword("decoy")
	if err != nil {
		return nil, err
	}
	u.decoy, _ = parseHash(decoy)
	return u, nil
}

// validUserName accepts the names a users file may hold: 1 to 64 letters,
// digits, and . _ - @ (an admin's mail address is a fine name).
func validUserName(s string) error {
	if s == "" || len(s) > 64 {
		return errors.New("expected a user name of 1 to 64 characters")
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("._-@", c):
		default:
			return fmt.Errorf("user name %q: only letters, digits and . _ - @ are allowed", s)
		}
	}
	return nil
}

// Check reports whether name and password are an account's.
func (u *Users) Check(name, password string) bool {
	h, ok := u.hashes[name]
	if !ok {
		u.decoy.matches(password)
		return false
	}
	return h.matches(password)
}

// AddUser returns the users file content b with name set to password's
// hash: a new line at the end, or the name's line replaced. b may be empty
// (a new file).
func AddUser(b []byte, name, password string) ([]byte, error) {
	if err := validUserName(name); err != nil {
		return nil, err
	}
	if password == "" {
		return nil, errors.New("empty password")
	}
	h, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	entry := name + ":" + h
	var out []string
	replaced := false
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if user, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && user == name {
			line, replaced = entry, true
		}
		if line != "" || len(out) > 0 {
			out = append(out, line)
		}
	}
	if !replaced {
		out = append(out, entry)
	}
	return []byte(strings.Join(out, "\n") + "\n"), nil
}
