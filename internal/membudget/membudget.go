// Package membudget keeps one process-wide account of the memory that
// grows with what clients send: message content held in memory, and the
// header sections read ahead while a message arrives. Each holder reserves
// before it grows and releases what it holds when it is done; a reservation
// that does not fit is refused, and the holder falls back to what costs no
// memory (the spool on disk, or not reading ahead). So a thousand clients
// that each stop just short of memory_threshold cannot make the process
// hold a thousand thresholds.
package membudget

import "sync/atomic"

// Budget is a limit on bytes held, and the bytes held now. A nil *Budget
// has no limit and accounts for nothing, for tools that handle one message
// at a time.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// New returns a budget of limit bytes.
func New(limit int64) *Budget {
	return &Budget{limit: limit}
}

// Reserve takes n bytes if they fit in what is left, and reports whether
// they did. Nothing is taken when they do not.
func (b *Budget) Reserve(n int64) bool {
	if b == nil {
		return true
	}
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// Release gives back n bytes taken by Reserve.
func (b *Budget) Release(n int64) {
	if b != nil {
		b.used.Add(-n)
	}
}

// InUse is the number of bytes reserved now.
func (b *Budget) InUse() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Limit is the budget's size in bytes; 0 for a nil budget.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}
