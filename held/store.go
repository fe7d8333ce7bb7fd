// Package held is mxguard's store of held mail: the messages a rule with
// the hold action kept instead of delivering, each as the backend would
// have received it, with its envelope, client and verdict, until an admin
// releases or deletes it, or it expires.
//
// It is a package of its own, apart from proxy and policy, because three
// callers share it and none of them owns it: the proxy writes to it at
// the end of DATA, serve releases and expires from it, and the admin's
// commands (and a web console) read it without a running server. It knows
// nothing of SMTP: a release hands the stored bytes and envelope to a
// function the caller gives, which delivers them.
//
// Durability: a message is on disk, its content and its metadata fsynced
// and their directory too, before Hold returns; the client hears 250 only
// after that. A release writes its intent (fsynced) before the delivery
// starts, so that a crash during a delivery is found at the next start
// and the message shown as possibly delivered, never silently sent twice
// or lost.
package held

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The store's errors; callers tell them apart with errors.Is.
var (
	// ErrFull: the message would take the store past hold.max_bytes.
	ErrFull = errors.New("held: the store is full (hold.max_bytes)")
	// ErrNotFound: no held message has that id.
	ErrNotFound = errors.New("held: no such held message")
	// ErrReleased: the message was released already; nothing was sent.
	ErrReleased = errors.New("held: the message was released already")
	// ErrPossiblyDelivered: a release was under way when mxguard
	// stopped; only a forced release sends it again.
	ErrPossiblyDelivered = errors.New("held: the message was possibly delivered by a release that mxguard did not see end")
	// ErrBusy: a release of the message is under way.
	ErrBusy = errors.New("held: a release of the message is under way")
	// ErrLocked: another process has the store open for writing.
	ErrLocked = errors.New("held: the store is in use by another mxguard")
)

// The files of the store's directory.
const (
	lockFile   = ".lock"
	tempPrefix = ".tmp-"
	msgExt     = ".eml"
	metaExt    = ".json"
)

// idRE is the form of the ids the store gives: checked before an id from
// outside (a command line, a socket) becomes a file name.
var idRE = regexp.MustCompile(`^[a-z2-7]{16}$`)

// ValidID reports whether id has the form of a held message's id.
func ValidID(id string) bool { return idRE.MatchString(id) }

// Options configures a Store.
type Options struct {
	// Dir is the store's directory (hold.dir); Open creates it.
	Dir string
	// Keep is how long a message is kept (hold.keep); Expire deletes
	// older ones.
	Keep time.Duration
	// MaxBytes bounds the held content together (hold.max_bytes).
	MaxBytes int64
	// Now is the clock; nil is time.Now. Tests of expiry set it.
	Now    func() time.Time
	Logger *slog.Logger
}

// Store is the held-mail store of one directory. A Store from Open is the
// one writer (it holds the directory's lock); one from OpenReader only
// lists and reads, as the admin's commands do while serve runs.
type Store struct {
	opts   Options
	lock   *os.File // nil for a reader
	mu     sync.Mutex
	used   int64           // bytes of the held contents
	busy   map[string]bool // ids being released or deleted
	reader bool
}

// Open opens the store in o.Dir for writing, creating the directory
// (mode 0700: held mail is mail) and taking its lock. It cleans what a
// crash left: temporary files, and a message whose metadata was never
// written (its client never heard 250). A release found under way becomes
// StatePossiblyDelivered.
func Open(o Options) (*Store, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("held: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(o.Dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("held: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s)", ErrLocked, o.Dir)
		}
		return nil, fmt.Errorf("held: lock: %w", err)
	}
	s := &Store{opts: o, lock: lock, busy: map[string]bool{}}
	if err := s.recover(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenReader opens the store in dir for listing and reading only. It
// takes no lock and changes nothing, so it works beside a running serve.
func OpenReader(dir string) *Store {
	return &Store{opts: Options{Dir: dir, Now: time.Now, Logger: slog.Default()}, busy: map[string]bool{}, reader: true}
}

// Close releases the directory's lock.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.opts.Dir }

// Used is what the held contents take, in bytes.
func (s *Store) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// recover removes what a crash left half-written, marks the releases that
// were under way, and counts the bytes held.
func (s *Store) recover() error {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("held: %w", err)
	}
	metas := map[string]bool{}
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), metaExt); ok && ValidID(id) {
			metas[id] = true
		}
	}
	changed := false
	for _, e := range entries {
		name := e.Name()
		id, isMsg := strings.CutSuffix(name, msgExt)
		switch {
		case strings.HasPrefix(name, tempPrefix):
			s.opts.Logger.Warn("held: removing a file a crash left half-written", "file", name)
		case isMsg && ValidID(id) && !metas[id]:
			// The metadata is written last: without it, the client never
			// heard 250 and is retrying.
			s.opts.Logger.Warn("held: removing a message whose holding did not finish", "id", id)
		case isMsg && ValidID(id):
			if fi, err := e.Info(); err == nil {
				s.used += fi.Size()
			}
			continue
		default:
			continue
		}
		if err := os.Remove(filepath.Join(s.opts.Dir, name)); err != nil {
			return fmt.Errorf("held: %w", err)
		}
		changed = true
	}
	for id := range metas {
		m, err := s.Get(id)
		if err != nil {
			return err
		}
		if m.State != StateReleasing {
			continue
		}
		m.State = StatePossiblyDelivered
		if a := m.LastAttempt(); a != nil {
			a.Reply = "mxguard stopped before the backend's reply to this release was recorded"
		}
		s.opts.Logger.Warn("held: a release was under way when mxguard stopped; the message is possibly delivered", "id", id)
		if err := s.saveMeta(&m); err != nil {
			return err
		}
	}
	if changed {
		return syncDir(s.opts.Dir)
	}
	return nil
}

// newID returns a fresh random id: 80 bits, in lower-case base32.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// Hold stores a message: write writes its content, m describes it (ID,
// Received, State and Size are set here). When Hold returns without an
// error, the content and the metadata are on disk, fsynced, and so is the
// directory that names them: the client may hear 250. m.Size, set by the
// caller to the message's size before our headers, lets a store that is
// already full refuse before anything is written.
func (s *Store) Hold(m Meta, write func(io.Writer) error) (Meta, error) {
	if s.reader {
		return Meta{}, errors.New("held: the store is open for reading only")
	}
	s.mu.Lock()
	full := s.used+m.Size > s.opts.MaxBytes
	s.mu.Unlock()
	if full {
		return Meta{}, ErrFull
	}
	m.ID, m.Received, m.State, m.Attempts = newID(), s.opts.Now().UTC(), StateHeld, nil
	f, err := os.CreateTemp(s.opts.Dir, tempPrefix+"*")
	if err != nil {
		return Meta{}, fmt.Errorf("held: %w", err)
	}
	tmp := f.Name()
	cw := &countWriter{w: f}
	err = write(cw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return Meta{}, fmt.Errorf("held: writing %s: %w", m.ID, err)
	}
	m.Size = cw.n
	s.mu.Lock()
	if s.used+m.Size > s.opts.MaxBytes {
		s.mu.Unlock()
		_ = os.Remove(tmp)
		return Meta{}, ErrFull
	}
	s.used += m.Size
	s.mu.Unlock()
	// The content is renamed into place first and the metadata after it:
	// a crash in between leaves content without metadata, which Open
	// removes (its client never heard 250).
	err = os.Rename(tmp, s.path(m.ID, msgExt))
	if err == nil {
		err = s.saveMeta(&m)
	}
	if err != nil {
		_ = os.Remove(tmp)
		_ = os.Remove(s.path(m.ID, metaExt))
		_ = os.Remove(s.path(m.ID, msgExt))
		s.mu.Lock()
		s.used -= m.Size
		s.mu.Unlock()
		return Meta{}, fmt.Errorf("held: %w", err)
	}
	return m, nil
}

func (s *Store) path(id, ext string) string { return filepath.Join(s.opts.Dir, id+ext) }

// saveMeta writes m's metadata in place: a temporary file, fsynced,
// renamed over the old one, and the directory fsynced, so that a crash
// leaves the old metadata or the new, never a torn one.
func (s *Store) saveMeta(m *Meta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("held: %w", err)
	}
	f, err := os.CreateTemp(s.opts.Dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("held: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path(m.ID, metaExt))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("held: metadata of %s: %w", m.ID, err)
	}
	return syncDir(s.opts.Dir)
}

// syncDir fsyncs a directory, which makes the renames and removals in it
// durable (rename(2) alone is atomic, not durable).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("held: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("held: fsync %s: %w", dir, err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Get returns the metadata of the message id.
func (s *Store) Get(id string) (Meta, error) {
	if !ValidID(id) {
		return Meta{}, fmt.Errorf("%w: %q is not an id", ErrNotFound, id)
	}
	data, err := os.ReadFile(s.path(id, metaExt))
	if errors.Is(err, fs.ErrNotExist) {
		return Meta{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Meta{}, fmt.Errorf("held: %w", err)
	}
	var m Meta
	if err := json.Unmarshal(data, &m); err != nil {
		return Meta{}, fmt.Errorf("held: metadata of %s: %w", id, err)
	}
	return m, nil
}

// Content opens the content of the message id: the message as the
// backend would have received it. The caller closes it.
func (s *Store) Content(id string) (*os.File, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%w: %q is not an id", ErrNotFound, id)
	}
	f, err := os.Open(s.path(id, msgExt))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("held: %w", err)
	}
	return f, nil
}

// List returns the metadata of the messages f selects, newest first.
func (s *Store) List(f Filter) ([]Meta, error) {
	names, err := filepath.Glob(filepath.Join(s.opts.Dir, "*"+metaExt))
	if err != nil {
		return nil, fmt.Errorf("held: %w", err)
	}
	var out []Meta
	for _, n := range names {
		id := strings.TrimSuffix(filepath.Base(n), metaExt)
		if !ValidID(id) {
			continue
		}
		m, err := s.Get(id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted while we listed
		}
		if err != nil {
			return nil, err
		}
		if f.Match(&m) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Meta) int {
		if c := b.Received.Compare(a.Received); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// claim marks id busy for a release or a deletion by this process.
func (s *Store) claim(id string) error {
	if s.reader {
		return errors.New("held: the store is open for reading only")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[id] {
		return fmt.Errorf("%w: %s", ErrBusy, id)
	}
	s.busy[id] = true
	return nil
}

func (s *Store) unclaim(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.busy, id)
}

// Delete removes the message id and returns what it was.
func (s *Store) Delete(id string) (Meta, error) {
	if err := s.claim(id); err != nil {
		return Meta{}, err
	}
	defer s.unclaim(id)
	return s.remove(id)
}

// remove deletes a claimed message: the metadata first, so that a crash
// in between leaves content without metadata, which Open removes.
func (s *Store) remove(id string) (Meta, error) {
	m, err := s.Get(id)
	if err != nil {
		return Meta{}, err
	}
	if err := os.Remove(s.path(id, metaExt)); err != nil {
		return Meta{}, fmt.Errorf("held: %w", err)
	}
	var size int64
	if fi, err := os.Stat(s.path(id, msgExt)); err == nil {
		size = fi.Size()
	}
	if err := os.Remove(s.path(id, msgExt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Meta{}, fmt.Errorf("held: %w", err)
	}
	s.mu.Lock()
	s.used -= size
	s.mu.Unlock()
	return m, syncDir(s.opts.Dir)
}

// Expire deletes the messages held longer than Keep, released or not,
// and returns them. A message being released is left for the next sweep.
func (s *Store) Expire() ([]Meta, error) {
	cutoff := s.opts.Now().Add(-s.opts.Keep)
	old, err := s.List(Filter{Until: cutoff})
	if err != nil {
		return nil, err
	}
	var out []Meta
	var errs []error
	for _, m := range old {
		if s.claim(m.ID) != nil {
			continue
		}
		gone, err := s.remove(m.ID)
		s.unclaim(m.ID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		if err == nil {
			out = append(out, gone)
		}
	}
	return out, errors.Join(errs...)
}

// Result is what a delivery of a release gave.
type Result struct {
	// Delivered is true when the backend answered 250.
	Delivered bool
	// Unknown is true when the backend had the whole message but its
	// reply never came (the connection broke, or timed out): it may have
	// taken it. The message becomes StatePossiblyDelivered.
	Unknown bool
	// Reply is the backend's reply, or why there was none.
	Reply string
}

// DeliverFunc delivers a held message's content with its original
// envelope (m.MailFrom with its parameters, every one of m.Rcpts).
type DeliverFunc func(ctx context.Context, m Meta, content io.Reader) Result

// Release delivers the message id through deliver, on behalf of by. The
// intent (state releasing, with the attempt) is on disk before deliver is
// called, and the outcome after it returns: released on a 250, else held
// again with the backend's reply. A message released already is not sent
// again (ErrReleased); one possibly delivered only when force is set
// (ErrPossiblyDelivered otherwise). The returned Meta has the attempt.
func (s *Store) Release(ctx context.Context, id, by string, force bool, deliver DeliverFunc) (Meta, error) {
	if err := s.claim(id); err != nil {
		return Meta{}, err
	}
	defer s.unclaim(id)
	m, err := s.Get(id)
	if err != nil {
		return Meta{}, err
	}
	prev := m.State
	switch {
	case prev == StateReleased:
		return m, fmt.Errorf("%w: %s", ErrReleased, id)
	case (prev == StatePossiblyDelivered || prev == StateReleasing) && !force:
		return m, fmt.Errorf("%w: %s", ErrPossiblyDelivered, id)
	}
	m.Attempts = append(m.Attempts, Attempt{By: by, Started: s.opts.Now().UTC(), Forced: prev != StateHeld})
	m.State = StateReleasing
	if err := s.saveMeta(&m); err != nil {
		return Meta{}, err
	}
	res := s.deliver(ctx, m, deliver)
	a := m.LastAttempt()
	a.Ended, a.Delivered, a.Reply = s.opts.Now().UTC(), res.Delivered, res.Reply
	switch {
	case res.Delivered:
		m.State = StateReleased
	case res.Unknown:
		m.State = StatePossiblyDelivered
	case prev == StateHeld:
		m.State = StateHeld
	default:
		// A refused second try says nothing of the first one.
		m.State = StatePossiblyDelivered
	}
	if err := s.saveMeta(&m); err != nil {
		return m, err
	}
	return m, nil
}

func (s *Store) deliver(ctx context.Context, m Meta, deliver DeliverFunc) Result {
	f, err := s.Content(m.ID)
	if err != nil {
		return Result{Reply: "cannot read the held message: " + err.Error()}
	}
	defer f.Close()
	return deliver(ctx, m, f)
}
