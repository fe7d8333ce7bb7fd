package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the embedded store's file in the state directory.
const FileName = "state.db"

// FlushInterval is how often the embedded store writes its changes: the
// most a crash (not a clean stop, which writes everything) may lose.
const FlushInterval = time.Second

// lockTimeout is how long opening waits for another process's lock on
// the file: a second mxguard on the same directory must fail at once, not
// hang at start.
const lockTimeout = 200 * time.Millisecond

// ErrLocked is returned by OpenEmbedded when another process (a running
// mxguard serve) holds the file.
var ErrLocked = errors.New("in use by another process (is mxguard serve running on it?)")

var bucketName = []byte("entries")

// Embedded is the store of a single machine: a Memory as the working copy,
// written to a bbolt file in the background. Every change reaches the file
// within FlushInterval, in one transaction, and on Close; so a crash may
// lose up to FlushInterval of counters and greylist entries (never mail:
// held messages are not state). At open it reads the live entries back.
type Embedded struct {
	*Memory
	db   *bolt.DB
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}

	// flushMu makes the background flush and Close's last one take turns.
	flushMu   sync.Mutex
	closeOnce sync.Once
	closeErr  error
}

// EmbeddedOptions configure an Embedded store.
type EmbeddedOptions struct {
	MemoryOptions
	// Logger gets the background writes' failures [slog.Default()].
	Logger *slog.Logger
	// FlushInterval is how often changes are written [FlushInterval].
	FlushInterval time.Duration
}

// OpenEmbedded opens (creating it if need be) the store in dir/FileName.
// The file is locked while open: when another process has it, it returns
// an error wrapping ErrLocked after a short wait.
func OpenEmbedded(dir string, o EmbeddedOptions) (*Embedded, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = FlushInterval
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("state: %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	s := &Embedded{
		Memory: newTrackedMemory(o.MemoryOptions),
		db:     db,
		log:    o.Logger,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if err := s.loadAll(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("state: read %s: %w", path, err)
	}
	go s.flusher(o.FlushInterval)
	return s, nil
}

// loadAll reads the live entries into the working copy and deletes the
// expired ones from the file.
func (s *Embedded) loadAll() error {
	now := s.now()
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketName)
		if err != nil {
			return err
		}
		var stale [][]byte
		err = b.ForEach(func(k, v []byte) error {
			e, ok := decodeEntry(v)
			if !ok || !e.expires.IsZero() && !now.Before(e.expires) {
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			s.load(string(k), e)
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// flusher writes the changes every interval until Close.
func (s *Embedded) flusher(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Flush(); err != nil {
				s.log.Warn("state: cannot write the store; retrying", "err", err)
			}
		}
	}
}

// Flush writes the changes since the last flush in one transaction.
func (s *Embedded) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	recs := s.takeDirty()
	if len(recs) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		for _, r := range recs {
			var err error
			if r.e == nil {
				err = b.Delete([]byte(r.key))
			} else {
				err = b.Put([]byte(r.key), encodeEntry(r.e))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Not lost: written with the next flush.
		s.Memory.mu.Lock()
		for _, r := range recs {
			s.markDirty(r.key)
		}
		s.Memory.mu.Unlock()
		return fmt.Errorf("state: write %s: %w", s.db.Path(), err)
	}
	return nil
}

// Close writes what the store holds and closes the file.
func (s *Embedded) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		_ = s.Memory.Close()
		s.closeErr = errors.Join(s.Flush(), s.db.Close())
	})
	return s.closeErr
}

// The file's value: 8 bytes of expiry (Unix nanoseconds, 0 for none), one
// byte of kind (0 number, 1 bytes), then the number's 8 bytes or the bytes.
const (
	kindNumber = 0
	kindBytes  = 1
)

func encodeEntry(e *entry) []byte {
	var exp int64
	if !e.expires.IsZero() {
		exp = e.expires.UnixNano()
	}
	out := binary.BigEndian.AppendUint64(make([]byte, 0, 17+len(e.b)), uint64(exp))
	if e.b != nil {
		return append(append(out, kindBytes), e.b...)
	}
	return binary.BigEndian.AppendUint64(append(out, kindNumber), uint64(e.n))
}

func decodeEntry(v []byte) (*entry, bool) {
	if len(v) < 9 {
		return nil, false
	}
	e := &entry{}
	if exp := int64(binary.BigEndian.Uint64(v)); exp != 0 {
		e.expires = time.Unix(0, exp)
	}
	switch v[8] {
	case kindBytes:
		e.b = append([]byte{}, v[9:]...)
	case kindNumber:
		if len(v) != 17 {
			return nil, false
		}
		e.n = int64(binary.BigEndian.Uint64(v[9:]))
	default:
		return nil, false
	}
	return e, true
}

// EnsureDir creates dir (and its parents) for the store, private to the
// user mxguard runs as: the greylist names who writes to whom.
func EnsureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
