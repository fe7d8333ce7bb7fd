package console

import (
	"os"
	"strings"
	"testing"
)

// TestMain makes new hashes cheap (1 MiB, one pass): with the race
// detector the real parameters cost seconds a hash, and what is tested
// here is the format and the checking, which the parameters do not
// change. TestHashParameters checks the real ones.
func TestMain(m *testing.M) {
	saved := argonParams
	argonParams.time, argonParams.memory, argonParams.threads = 1, 1024, 1
	code := m.Run()
	argonParams = saved
	os.Exit(code)
}

// TestHashParameters: new hashes use RFC 9106's second recommended
// parameters (64 MiB, 3 passes).
func TestHashParameters(t *testing.T) {
	saved := argonParams
	t.Cleanup(func() { argonParams = saved })
	argonParams.time, argonParams.memory, argonParams.threads = 3, 64*1024, 2
	h, err := HashPassword("pw")
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("HashPassword = %q, %v", h, err)
	}
	if _, err := parseHash(h); err != nil {
		t.Fatalf("the hash does not parse: %v", err)
	}
}

// TestUsersFile: adduser's output loads and checks the password; a name
// added again replaces its line; bad lines are refused with file:line:col.
func TestUsersFile(t *testing.T) {
	b, err := AddUser([]byte("# admins\n"), "alice", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	b, err = AddUser(b, "bob@example.org", "hunter2")
	if err != nil {
		t.Fatal(err)
	}
	b, err = AddUser(b, "alice", "new one")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "alice:"); n != 1 {
		t.Fatalf("alice listed %d times:\n%s", n, b)
	}
	u, err := parseUsers("users", b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, pw string
		ok       bool
	}{{"alice", "new one", true}, {"alice", "s3cret", false}, {"bob@example.org", "hunter2", true}, {"carol", "hunter2", false}, {"bob@example.org", "", false}} {
		if got := u.Check(c.name, c.pw); got != c.ok {
			t.Errorf("Check(%q, %q) = %v, want %v", c.name, c.pw, got, c.ok)
		}
	}
	for in, want := range map[string]string{
		"alice\n":              "users:1:1: expected \"name:hash\"",
		"al ice:$argon2id$x\n": "users:1:1: user name \"al ice\"",
		"alice:plain\n":        "users:1:7: expected an argon2id hash",
		"a:$argon2id$v=19$m=9999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n": "out of range",
		"# nobody\n": "no users",
	} {
		if _, err := parseUsers("users", []byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseUsers(%q) = %v, want an error containing %q", in, err, want)
		}
	}
	if _, err := AddUser(nil, "x:y", "pw"); err == nil {
		t.Error("AddUser accepted a name with a colon")
	}
}
