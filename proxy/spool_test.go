package proxy

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"mxguard/internal/membudget"
)

// content is n pseudo-random octets, so that a chunk out of place shows.
func content(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeInPieces writes b to m in pieces of varying sizes, as the data
// scanner does.
func writeInPieces(t *testing.T, m *Message, b []byte) {
	t.Helper()
	sizes := []int{1, 7, 4096, chunkSize - 3, 100, chunkSize, 32 << 10}
	for i := 0; len(b) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(b))
		if _, err := m.Write(b[:n]); err != nil {
			t.Fatalf("write: %v", err)
		}
		b = b[n:]
	}
}

func TestMessageContentRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name      string
		size      int
		threshold int
		budget    int64
		spilled   bool
	}{
		{"empty", 0, 1 << 20, 1 << 20, false},
		{"one octet", 1, 1 << 20, 1 << 20, false},
		{"one chunk exactly", chunkSize, 1 << 20, 1 << 20, false},
		{"across chunks", 5*chunkSize + 17, 1 << 20, 1 << 20, false},
		{"past the threshold", 200 << 10, 64 << 10, 1 << 20, true},
		{"past the budget", 200 << 10, 1 << 20, 64 << 10, true},
		{"no budget at all", 100, 1 << 20, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := membudget.New(c.budget)
			sp := &Spool{Dir: t.TempDir(), Threshold: c.threshold, Memory: mem}
			want := content(c.size)
			m := sp.NewMessage()
			writeInPieces(t, m, want)
			if m.Spilled() != c.spilled || m.Size() != int64(c.size) {
				t.Fatalf("spilled %v, size %d; want %v, %d", m.Spilled(), m.Size(), c.spilled, c.size)
			}
			if c.spilled && mem.InUse() > chunkSize {
				// One chunk at most: its write buffer.
				t.Fatalf("a spilled message holds %d octets of the budget", mem.InUse())
			}
			if mem.InUse() > c.budget {
				t.Fatalf("%d octets held, over the budget of %d", mem.InUse(), c.budget)
			}
			// Read, and WriteTo (io.Copy's path), give the content back.
			r, err := m.Reader()
			if err != nil {
				t.Fatal(err)
			}
			if c.spilled && mem.InUse() != 0 {
				t.Fatalf("a spilled message, written, still holds %d octets of the budget", mem.InUse())
			}
			got, err := io.ReadAll(struct{ io.Reader }{r})
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Read: %d octets (err %v), want the %d written", len(got), err, len(want))
			}
			r, _ = m.Reader()
			var buf bytes.Buffer
			if _, err := io.Copy(&buf, r); err != nil || !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("WriteTo: %d octets (err %v), want the %d written", buf.Len(), err, len(want))
			}
			for _, n := range []int{0, 1, 100, chunkSize, chunkSize + 1, 3*chunkSize + 5, 1 << 30} {
				h, err := m.Head(n)
				if err != nil || !bytes.Equal(h, want[:min(n, len(want))]) {
					t.Fatalf("Head(%d): %d octets (err %v), want the first %d", n, len(h), err, min(n, len(want)))
				}
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if mem.InUse() != 0 {
				t.Fatalf("%d octets of the budget held after Close", mem.InUse())
			}
			if left, _ := filepath.Glob(filepath.Join(sp.Dir, "*")); len(left) != 0 {
				t.Fatalf("spool files left after Close: %v", left)
			}
			if _, err := m.Reader(); err == nil {
				t.Fatal("Reader after Close: no error")
			}
			if _, err := m.Write([]byte("x")); err == nil {
				t.Fatal("Write after Close: no error")
			}
		})
	}
}

// The budget is one for all messages: what one holds, another cannot.
func TestMessagesShareTheBudget(t *testing.T) {
	mem := membudget.New(4 * chunkSize)
	sp := &Spool{Dir: t.TempDir(), Threshold: 1 << 20, Memory: mem}
	a, b := sp.NewMessage(), sp.NewMessage()
	defer a.Close()
	defer b.Close()
	writeInPieces(t, a, content(3*chunkSize))
	writeInPieces(t, b, content(2*chunkSize))
	if a.Spilled() || !b.Spilled() {
		t.Fatalf("spilled: first %v, second %v; want the second only", a.Spilled(), b.Spilled())
	}
	if _, err := b.Reader(); err != nil { // gives b's write buffer back
		t.Fatal(err)
	}
	if mem.InUse() != 3*chunkSize {
		t.Fatalf("%d octets held, want the first message's %d", mem.InUse(), 3*chunkSize)
	}
	a.Close()
	c := sp.NewMessage()
	defer c.Close()
	writeInPieces(t, c, content(4*chunkSize))
	if c.Spilled() || mem.InUse() != 4*chunkSize {
		t.Fatalf("after the first closed, a message of the whole budget: spilled %v, %d held", c.Spilled(), mem.InUse())
	}
}

// A spool that cannot be written fails the message and gives its memory
// back; the session turns the error into 451.
func TestMessageSpillFailure(t *testing.T) {
	mem := membudget.New(1 << 20)
	sp := &Spool{Dir: filepath.Join(t.TempDir(), "gone"), Threshold: 4 * chunkSize, Memory: mem}
	m := sp.NewMessage()
	if _, err := m.Write(content(3 * chunkSize)); err != nil {
		t.Fatal(err)
	}
	_, err := m.Write(content(2 * chunkSize))
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("write past the threshold into a missing spool dir: %v, want not-exist", err)
	}
	if mem.InUse() != 0 {
		t.Fatalf("a failed message holds %d octets of the budget", mem.InUse())
	}
	if _, err := m.Write([]byte("x")); err == nil {
		t.Fatal("write after failure: no error")
	}
	if _, err := m.Reader(); err == nil {
		t.Fatal("Reader after failure: no error")
	}
	if err := m.Close(); err != nil || mem.InUse() != 0 {
		t.Fatalf("Close: %v, %d held", err, mem.InUse())
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// A check that overran its deadline may still read when the transaction
// ends: it reads the content it asked for, not another message's, and the
// budget is given back all the same.
func TestMessageReaderOutlivesClose(t *testing.T) {
	mem := membudget.New(1 << 20)
	sp := &Spool{Dir: t.TempDir(), Threshold: 1 << 20, Memory: mem}
	want := content(3*chunkSize + 9)
	m := sp.NewMessage()
	writeInPieces(t, m, want)
	r, err := m.Reader()
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 10)
	if _, err := io.ReadFull(r, first); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if mem.InUse() != 0 {
		t.Fatalf("%d octets held after Close", mem.InUse())
	}
	// Another message takes chunks from the pool and overwrites them.
	other := sp.NewMessage()
	writeInPieces(t, other, bytes.Repeat([]byte{0xAA}, 4*chunkSize))
	defer other.Close()
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(append(first, rest...), want) {
		t.Fatal("a reader that outlived Close read something else than its message")
	}
}
