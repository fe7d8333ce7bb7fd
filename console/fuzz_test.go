package console

import (
	"strings"
	"testing"
)

// FuzzParseUsers: whatever the users file holds, parsing it gives users
// or an error naming the file and a position, never a panic; every hash
// it accepts is within the bounds a login relies on.
func FuzzParseUsers(f *testing.F) {
	ok, _ := AddUser(nil, "admin", "pw")
	for _, s := range []string{string(ok), "", "# c\n", "a:", "a:$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n",
		"a:$argon2id$v=19$m=99999999999,t=1,p=1$x$y\n", "a:b\nb:c\n", strings.Repeat("x", 5000)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := parseUsers("users", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "users") {
				t.Fatalf("error without the file's name: %v", err)
			}
			return
		}
		for name, h := range u.hashes {
			if len(h.key) < 16 || len(h.key) > 64 || len(h.salt) < 8 || h.memory > maxArgonMemory || h.time < 1 || h.threads < 1 {
				t.Fatalf("user %q: a hash out of bounds: %+v", name, h)
			}
		}
	})
}
