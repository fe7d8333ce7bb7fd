package policy

import (
	"sort"

	"mxguard/rules"
)

// ReplayChange is one kind of changed outcome of a replay (reject →
// accept), with how often it happened and the first few transactions.
type ReplayChange struct {
	From, To string
	Count    int
	Examples []ReplayExample
}

// ReplayExample is a transaction whose outcome a replay changed.
type ReplayExample struct {
	Record *Record
	Got    ReplayResult
}

// ID is the example's transaction id, or its session id for a record of
// a connection without a transaction.
func (e ReplayExample) ID() string {
	if e.Record.Tx != "" {
		return e.Record.Tx
	}
	return e.Record.Session
}

// ReplaySummary adds up what a rule set would change on logged
// transactions: "mxguard rules replay" and the console's rules page both
// print one, so that they cannot disagree.
type ReplaySummary struct {
	// Set is the rule set replayed.
	Set *rules.Set
	// Total is the transactions replayed, Changed those whose action
	// would change.
	Total, Changed int
	// examples bounds the examples kept per kind of change.
	examples int
	changes  map[[2]string]*ReplayChange
}

// NewReplaySummary returns an empty summary of set that keeps up to
// examples transactions of each kind of change.
func NewReplaySummary(set *rules.Set, examples int) *ReplaySummary {
	return &ReplaySummary{Set: set, examples: examples, changes: map[[2]string]*ReplayChange{}}
}

// Add replays rec with the summary's set and counts what changed.
func (s *ReplaySummary) Add(rec *Record) ReplayResult {
	s.Total++
	got := Replay(rec, s.Set)
	if got.Action == rec.Action {
		return got
	}
	s.Changed++
	key := [2]string{rec.Action, got.Action}
	c := s.changes[key]
	if c == nil {
		c = &ReplayChange{From: rec.Action, To: got.Action}
		s.changes[key] = c
	}
	c.Count++
	if len(c.Examples) < s.examples {
		c.Examples = append(c.Examples, ReplayExample{Record: rec, Got: got})
	}
	return got
}

// Changes are the kinds of change, the most frequent first.
func (s *ReplaySummary) Changes() []*ReplayChange {
	list := make([]*ReplayChange, 0, len(s.changes))
	for _, c := range s.changes {
		list = append(list, c)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Count != list[j].Count {
			return list[i].Count > list[j].Count
		}
		return list[i].From+list[i].To < list[j].From+list[j].To
	})
	return list
}
