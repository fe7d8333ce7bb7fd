package membudget

import (
	"sync"
	"testing"
)

// Reservations from many goroutines never add up to more than the limit,
// and what is released comes back in full.
func TestBudgetHoldsUnderContention(t *testing.T) {
	const limit, n = 1000, 7
	b := New(limit)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		held int64
		over bool
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10000 {
				if !b.Reserve(n) {
					continue
				}
				mu.Lock()
				held += n
				over = over || held > limit
				mu.Unlock()
				mu.Lock()
				held -= n
				mu.Unlock()
				b.Release(n)
			}
		}()
	}
	wg.Wait()
	if over {
		t.Fatal("reservations exceeded the limit")
	}
	if b.InUse() != 0 {
		t.Fatalf("%d in use after every reservation was released", b.InUse())
	}
}

func TestBudgetRefusesWhatDoesNotFit(t *testing.T) {
	b := New(10)
	if !b.Reserve(6) || b.Reserve(5) || !b.Reserve(4) || b.Reserve(1) {
		t.Fatal("want 6 and 4 taken, 5 and 1 refused")
	}
	if b.InUse() != 10 || b.Limit() != 10 {
		t.Fatalf("in use %d, limit %d", b.InUse(), b.Limit())
	}
	b.Release(10)
	var none *Budget
	if !none.Reserve(1<<40) || none.InUse() != 0 || none.Limit() != 0 {
		t.Fatal("a nil budget limits nothing and holds nothing")
	}
	none.Release(1)
}
