package console

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"mxguard/policy"
)

// Index is the console's index of the verdict log: the records in an
// embedded database (bbolt), newest first, with secondary keys for the
// filters a page is most often asked with (session and transaction id,
// action, rule, client address), so that a page costs the records it
// shows and the ones its filters pass over, not a scan of a week of logs.
//
// It follows the verdict log file as it grows, as tail -F does, rather
// than being written beside it by the sessions: the sessions pay nothing
// for it, an index lost or turned on later is rebuilt from the log, and
// the same index can follow a log shipped from another instance. What it
// has read is recorded with the records, in one transaction, so a crash
// neither loses nor repeats a record; a rotated log (a new file under the
// name) is read from its start.
type Index struct {
	db   *bolt.DB
	log  *slog.Logger
	keep time.Duration
	now  func() time.Time
}

// Bucket names.
var (
	bucketRecords = []byte("records") // key → the verdict line
	bucketKeys    = []byte("keys")    // "kind\x00value\x00" + key → nothing
	bucketMeta    = []byte("meta")    // "position" → filePosition
)

// Secondary key kinds.
const (
	kindSession = "s"
	kindAction  = "a"
	kindRule    = "r"
	kindClient  = "c"
)

// keyLen is a record key's length: the record's time (Unix nanoseconds,
// big-endian, so keys sort by time) and a sequence number that keeps two
// records of one nanosecond apart.
const keyLen = 16

// IndexOptions configure an Index.
type IndexOptions struct {
	// Keep is how long records are kept; older ones are pruned.
	Keep time.Duration
	// Logger reports what following the log meets (a bad line).
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// OpenIndex opens (creating) the index database at path.
func OpenIndex(path string, o IndexOptions) (*Index, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("console: index %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRecords, bucketKeys, bucketMeta, bucketHours} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("console: index %s: %w", path, err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Index{db: db, log: o.Logger, keep: o.Keep, now: o.Now}, nil
}

// Close closes the database.
func (x *Index) Close() error { return x.db.Close() }

// filePosition is how far the index has read the log, and in which file.
type filePosition struct {
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Offset int64  `json:"offset"`
	Seq    uint64 `json:"seq"`
}

// maxLine bounds a verdict line (as mxguard verdicts does): longer is
// corruption, skipped.
const maxLine = 1 << 20

// batchLines bounds the records one database transaction adds.
const batchLines = 1000

// Follow reads the log at path into the index, from where it stopped,
// and then keeps reading what is appended every interval until ctx ends.
// A log that is replaced (rotation) is read from its start; one that does
// not exist yet is waited for.
func (x *Index) Follow(ctx context.Context, path string, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	lastPrune := time.Time{}
	failing := "" // the error logged last: a failure is logged once, not every interval
	for {
		err := x.CatchUp(path)
		switch {
		case err != nil && !errors.Is(err, os.ErrNotExist) && err.Error() != failing:
			x.log.Warn("console: reading the verdict log", "path", path, "err", err)
			failing = err.Error()
		case err == nil && failing != "":
			x.log.Info("console: reading the verdict log again", "path", path)
			failing = ""
		}
		if now := x.now(); now.Sub(lastPrune) > time.Hour {
			if err := x.Prune(); err != nil {
				x.log.Warn("console: pruning the index", "err", err)
			}
			lastPrune = now
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// CatchUp indexes what the log at path holds beyond what was read.
func (x *Index) CatchUp(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("console: verdict log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("console: verdict log: %w", err)
	}
	var dev, ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		dev, ino = uint64(st.Dev), st.Ino
	}
	pos, err := x.position()
	if err != nil {
		return err
	}
	if pos.Dev != dev || pos.Ino != ino || fi.Size() < pos.Offset {
		// Another file under the name (rotated), or the same one cut
		// short: read it from its start.
		pos = filePosition{Dev: dev, Ino: ino, Seq: pos.Seq}
	}
	if fi.Size() == pos.Offset {
		return nil
	}
	if _, err := f.Seek(pos.Offset, io.SeekStart); err != nil {
		return fmt.Errorf("console: verdict log: %w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		lines, n, err := readLines(br, batchLines)
		if len(lines) > 0 || n > 0 {
			if err := x.add(lines, &pos, n); err != nil {
				return err
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("console: verdict log: %w", err)
		}
	}
}

// readLines reads up to max complete lines and returns them with the
// bytes consumed; a last line without its newline (one being written) is
// left for the next read. Over-long lines are consumed and dropped.
func readLines(br *bufio.Reader, max int) (lines [][]byte, consumed int64, err error) {
	for len(lines) < max {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			// Longer than the buffer: skip to its end, counting it.
			n := int64(len(line))
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				n += int64(len(line))
			}
			if err != nil {
				return lines, consumed, io.EOF // a partial long line: wait
			}
			consumed += n
			continue
		case err != nil:
			return lines, consumed, err
		}
		consumed += int64(len(line))
		if len(line) <= maxLine {
			lines = append(lines, bytes.Clone(line))
		}
	}
	return lines, consumed, nil
}

// position reads how far the log was read.
func (x *Index) position() (filePosition, error) {
	var pos filePosition
	err := x.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta).Get([]byte("position")); b != nil {
			return json.Unmarshal(b, &pos)
		}
		return nil
	})
	if err != nil {
		return pos, fmt.Errorf("console: index: %w", err)
	}
	return pos, nil
}

// add indexes lines and moves the position on by consumed bytes, in one
// transaction.
func (x *Index) add(lines [][]byte, pos *filePosition, consumed int64) error {
	next := *pos
	err := x.db.Update(func(tx *bolt.Tx) error {
		recs, keys := tx.Bucket(bucketRecords), tx.Bucket(bucketKeys)
		added := make([]*policy.Record, 0, len(lines))
		for _, line := range lines {
			r := new(policy.Record)
			if err := json.Unmarshal(line, r); err != nil || r.Time.IsZero() {
				x.log.Warn("console: a verdict log line that is not a verdict is not indexed", "offset", next.Offset)
				continue
			}
			next.Seq++
			key := recordKey(r.Time, next.Seq)
			if err := recs.Put(key, bytes.TrimRight(line, "\r\n")); err != nil {
				return err
			}
			for _, k := range secondaryKeys(r, key) {
				if err := keys.Put(k, nil); err != nil {
					return err
				}
			}
			added = append(added, r)
		}
		if err := addStats(tx, added); err != nil {
			return err
		}
		next.Offset += consumed
		b, err := json.Marshal(next)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put([]byte("position"), b)
	})
	if err != nil {
		return fmt.Errorf("console: index: %w", err)
	}
	*pos = next
	return nil
}

// recordKey is the key of a record at t.
func recordKey(t time.Time, seq uint64) []byte {
	k := make([]byte, keyLen)
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

// secondaryKey is kind and value's prefix in bucketKeys; a value holds no
// NUL (the log is JSON: a NUL would be escaped, and is removed here).
func secondaryKey(kind, value string) []byte {
	k := make([]byte, 0, len(kind)+len(value)+2+keyLen)
	k = append(k, kind...)
	k = append(k, 0)
	k = append(k, bytes.ReplaceAll([]byte(value), []byte{0}, nil)...)
	return append(k, 0)
}

// secondaryKeys are r's entries in bucketKeys.
func secondaryKeys(r *policy.Record, key []byte) [][]byte {
	var out [][]byte
	add := func(kind, value string) {
		if value != "" {
			out = append(out, append(secondaryKey(kind, value), key...))
		}
	}
	add(kindSession, r.Session)
	if r.Tx != r.Session {
		add(kindSession, r.Tx)
	}
	add(kindAction, r.Action)
	add(kindClient, r.ClientIP)
	seen := map[string]bool{}
	for _, m := range r.Rules {
		if !seen[m.Name] {
			seen[m.Name] = true
			add(kindRule, m.Name)
		}
	}
	return out
}

// Prune removes the records older than the index keeps.
func (x *Index) Prune() error {
	if x.keep <= 0 {
		return nil
	}
	cut := x.now().Add(-x.keep)
	limit := recordKey(cut, 0)
	if err := x.db.Update(func(tx *bolt.Tx) error { return pruneStats(tx, cut) }); err != nil {
		return fmt.Errorf("console: index: %w", err)
	}
	for {
		done := true
		err := x.db.Update(func(tx *bolt.Tx) error {
			recs, keys := tx.Bucket(bucketRecords), tx.Bucket(bucketKeys)
			c := recs.Cursor()
			n := 0
			for k, v := c.First(); k != nil && bytes.Compare(k, limit) < 0; k, v = c.Next() {
				if n == batchLines {
					done = false
					return nil
				}
				var r policy.Record
				if json.Unmarshal(v, &r) == nil {
					for _, sk := range secondaryKeys(&r, k) {
						if err := keys.Delete(sk); err != nil {
							return err
						}
					}
				}
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("console: index: %w", err)
		}
		if done {
			return nil
		}
	}
}

// Page is one page of a search: the records, newest first, and the token
// of the next page ("" when there is none).
type Page struct {
	Records []*policy.Record
	Next    string
	lastKey []byte
}

// Search returns up to n records that pass f, newest first, starting
// after the page token after ("" for the first page). It reads through
// the secondary key of the most selective filter f has, if any.
func (x *Index) Search(f *policy.VerdictFilter, after string, n int) (Page, error) {
	var page Page
	var start []byte // exclusive upper bound
	if after != "" {
		b, err := hex.DecodeString(after)
		if err != nil || len(b) != keyLen {
			return page, errors.New("console: bad page token")
		}
		start = b
	}
	if !f.Until.IsZero() {
		u := recordKey(f.Until, 0)
		if start == nil || bytes.Compare(u, start) < 0 {
			start = u
		}
	}
	var floor []byte
	if !f.Since.IsZero() {
		floor = recordKey(f.Since, 0)
	}
	prefix := x.plan(f)
	err := x.db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		// next returns the record keys newest first from start.
		var cur *bolt.Cursor
		var next func() []byte
		if prefix == nil {
			cur = recs.Cursor()
			k := seekBefore(cur, nil, start)
			next = func() []byte {
				out := k
				if k != nil {
					k, _ = cur.Prev()
				}
				return out
			}
		} else {
			cur = tx.Bucket(bucketKeys).Cursor()
			k := seekBefore(cur, prefix, start)
			next = func() []byte {
				if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+keyLen {
					return nil
				}
				out := k[len(prefix):]
				k, _ = cur.Prev()
				return out
			}
		}
		for key := next(); key != nil; key = next() {
			if floor != nil && bytes.Compare(key, floor) < 0 {
				return nil
			}
			v := recs.Get(key)
			if v == nil {
				continue
			}
			r := new(policy.Record)
			if json.Unmarshal(v, r) != nil || !f.Match(r) {
				continue
			}
			if len(page.Records) == n {
				page.Next = hex.EncodeToString(page.lastKey)
				return nil
			}
			page.Records = append(page.Records, r)
			page.lastKey = bytes.Clone(key)
		}
		return nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("console: index: %w", err)
	}
	return page, nil
}

// seekBefore puts c on the last key with prefix that is below prefix+
// bound (bound nil: the last key with prefix) and returns it.
func seekBefore(c *bolt.Cursor, prefix, bound []byte) []byte {
	var target []byte
	if bound != nil {
		target = append(bytes.Clone(prefix), bound...)
	} else if prefix != nil {
		// Just past every key with prefix: the prefix ends in NUL, so
		// the same prefix ending in 1 sorts after them all.
		target = bytes.Clone(prefix)
		target[len(target)-1] = 1
	}
	var k []byte
	if target == nil {
		k, _ = c.Last()
		return k
	}
	k, _ = c.Seek(target)
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	return k
}

// plan picks the secondary key to read through: the rule, then a single
// action, then a single client address; nil scans the records by time. (A
// session filter is a prefix, which the keys do not sort by time: an exact
// id is looked up with Session.)
func (x *Index) plan(f *policy.VerdictFilter) []byte {
	switch {
	case f.Rule != "":
		return secondaryKey(kindRule, f.Rule)
	case len(f.Actions) == 1:
		for a := range f.Actions {
			return secondaryKey(kindAction, a)
		}
	case f.Network.IsValid() && f.Network.IsSingleIP():
		return secondaryKey(kindClient, f.Network.Addr().String())
	}
	return nil
}

// Session returns the records of the session or transaction id (an exact
// id, as a refusal's reply carries it), oldest first.
func (x *Index) Session(id string) ([]*policy.Record, error) {
	var out []*policy.Record
	prefix := secondaryKey(kindSession, id)
	err := x.db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		c := tx.Bucket(bucketKeys).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) != len(prefix)+keyLen || len(out) >= maxSessionRecords {
				continue
			}
			r := new(policy.Record)
			if v := recs.Get(k[len(prefix):]); v != nil && json.Unmarshal(v, r) == nil {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console: index: %w", err)
	}
	return out, nil
}

// maxSessionRecords bounds a session's records shown (a session has one
// per transaction, limits.max_transactions at most).
const maxSessionRecords = 1000
