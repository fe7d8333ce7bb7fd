package greylist

import (
	"sync"
	"time"

	"mxguard/internal/state"
)

// frontTTL is how long an instance answers "known" for a client network
// from its own memory, without asking the store. A network that passed
// stays known for pass_lifetime (weeks), so within a minute the answer can
// only differ from the store's when the admin deleted the pass (mxguard
// state delete) or it ran out meanwhile: each instance of a fleet sees that
// within frontTTL. In return, the mail of a known network, most mail,
// costs no store round trip per recipient.
const frontTTL = time.Minute

// frontMax bounds the networks the front remembers.
const frontMax = 10000

// knownFront remembers the client networks the store said are known.
type knownFront struct {
	now      func() time.Time
	lifetime time.Duration // the pass's lifetime: a pass about to end is not kept

	mu   sync.Mutex
	nets map[string]knownEntry
}

// knownEntry is a network the store said is known, and the pass's age then.
type knownEntry struct {
	at  time.Time
	age time.Duration
}

func newKnownFront(lifetime time.Duration) *knownFront {
	return &knownFront{now: time.Now, lifetime: lifetime, nets: map[string]knownEntry{}}
}

// get answers "known" for network when the store said so within frontTTL,
// with the pass's age now.
func (k *knownFront) get(network string) (state.Grey, bool) {
	now := k.now()
	k.mu.Lock()
	e, ok := k.nets[network]
	if ok && now.Sub(e.at) >= frontTTL {
		delete(k.nets, network)
		ok = false
	}
	k.mu.Unlock()
	if !ok {
		return state.Grey{}, false
	}
	return state.Grey{State: state.GreyKnown, Age: e.age + now.Sub(e.at)}, true
}

// put remembers that network is known, its pass age old.
func (k *knownFront) put(network string, age time.Duration) {
	if k.lifetime-age <= frontTTL {
		return // the pass may end before the front forgets it
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.nets) >= frontMax {
		for n, e := range k.nets {
			if now.Sub(e.at) >= frontTTL {
				delete(k.nets, n)
			}
		}
		if len(k.nets) >= frontMax {
			clear(k.nets) // bounded; the store still knows them all
		}
	}
	k.nets[network] = knownEntry{at: now, age: age}
}
