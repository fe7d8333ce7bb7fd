package console

import (
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"mxguard/policy"
)

// bucketHours holds one hourStats per hour, updated as records are
// indexed, so that the charts read 168 small values for a week instead
// of a week of records.
var bucketHours = []byte("hours")

// hourStats counts one hour's verdicts.
type hourStats struct {
	Actions map[string]int `json:"actions,omitempty"`
	Rules   map[string]int `json:"rules,omitempty"`
	// RefusedDomains and RefusedNets count the refused (reject,
	// tempfail) verdicts by sending domain and client network (IPv4 /24,
	// IPv6 /64).
	RefusedDomains map[string]int `json:"refused_domains,omitempty"`
	RefusedNets    map[string]int `json:"refused_nets,omitempty"`
	// CheckMS is each check's total time and runs, for its mean latency.
	CheckMS map[string][2]float64 `json:"check_ms,omitempty"`
}

// maxHourKeys bounds each of an hour's maps (a spam run from a thousand
// domains must not grow a value without end): once full, new names are
// counted under otherKey.
const (
	maxHourKeys = 200
	otherKey    = "(others)"
)

func bump(m *map[string]int, k string) {
	if *m == nil {
		*m = map[string]int{}
	}
	if _, ok := (*m)[k]; !ok && len(*m) >= maxHourKeys {
		k = otherKey
	}
	(*m)[k]++
}

// add counts r.
func (h *hourStats) add(r *policy.Record) {
	bump(&h.Actions, r.Action)
	seen := map[string]bool{}
	for _, m := range r.Rules {
		if !seen[m.Name] {
			seen[m.Name] = true
			bump(&h.Rules, m.Name)
		}
	}
	if r.Action == "reject" || r.Action == "tempfail" {
		if _, dom, ok := strings.Cut(r.MailFrom, "@"); ok && dom != "" {
			bump(&h.RefusedDomains, strings.ToLower(dom))
		}
		if a, err := netip.ParseAddr(r.ClientIP); err == nil {
			bits := 64
			if a.Unmap().Is4() {
				bits = 24
			}
			if p, err := a.Unmap().Prefix(bits); err == nil {
				bump(&h.RefusedNets, p.String())
			}
		}
	}
	for name, c := range r.Checks {
		if h.CheckMS == nil {
			h.CheckMS = map[string][2]float64{}
		}
		if _, ok := h.CheckMS[name]; !ok && len(h.CheckMS) >= maxHourKeys {
			continue
		}
		v := h.CheckMS[name]
		h.CheckMS[name] = [2]float64{v[0] + c.DurationMS, v[1] + 1}
	}
}

// hourKey is the hours bucket's key of the hour t is in.
func hourKey(t time.Time) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(t.Unix()/3600))
	return k
}

// addStats merges the records' counts into their hours, in tx.
func addStats(tx *bolt.Tx, recs []*policy.Record) error {
	b, err := tx.CreateBucketIfNotExists(bucketHours)
	if err != nil {
		return err
	}
	hours := map[string]*hourStats{}
	for _, r := range recs {
		k := string(hourKey(r.Time))
		h := hours[k]
		if h == nil {
			h = new(hourStats)
			if v := b.Get([]byte(k)); v != nil {
				_ = json.Unmarshal(v, h) // a damaged hour starts again
			}
			hours[k] = h
		}
		h.add(r)
	}
	for k, h := range hours {
		v, err := json.Marshal(h)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

// Stats are the counts of the hours from Since to now, for the charts.
type Stats struct {
	Since time.Time
	// Hours are the hours' counts, oldest first, one per hour (empty
	// hours too).
	Hours []HourCount
	// Rules, RefusedDomains and RefusedNets are the top names over the
	// period; CheckMS each check's mean time.
	Rules, RefusedDomains, RefusedNets []NameCount
	CheckMS                            []NameValue
}

// HourCount is one hour's verdicts by action.
type HourCount struct {
	Start   time.Time
	Actions map[string]int
}

// NameCount is a name and how often it was counted.
type NameCount struct {
	Name  string
	Count int
}

// NameValue is a name and a value.
type NameValue struct {
	Name  string
	Value float64
}

// Stats sums the hours from hours ago to now, keeping the top names.
func (x *Index) Stats(hours, top int) (Stats, error) {
	now := x.now()
	first := now.Truncate(time.Hour).Add(-time.Duration(hours-1) * time.Hour)
	st := Stats{Since: first}
	rules, domains, nets := map[string]int{}, map[string]int{}, map[string]int{}
	checks := map[string][2]float64{}
	err := x.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHours)
		for i := range hours {
			start := first.Add(time.Duration(i) * time.Hour)
			hc := HourCount{Start: start, Actions: map[string]int{}}
			if b != nil {
				if v := b.Get(hourKey(start)); v != nil {
					var h hourStats
					if json.Unmarshal(v, &h) == nil {
						hc.Actions = h.Actions
						merge(rules, h.Rules)
						merge(domains, h.RefusedDomains)
						merge(nets, h.RefusedNets)
						for k, c := range h.CheckMS {
							v := checks[k]
							checks[k] = [2]float64{v[0] + c[0], v[1] + c[1]}
						}
					}
				}
			}
			st.Hours = append(st.Hours, hc)
		}
		return nil
	})
	st.Rules, st.RefusedDomains, st.RefusedNets = topN(rules, top), topN(domains, top), topN(nets, top)
	for k, v := range checks {
		if v[1] > 0 {
			st.CheckMS = append(st.CheckMS, NameValue{k, v[0] / v[1]})
		}
	}
	sort.Slice(st.CheckMS, func(i, j int) bool {
		if st.CheckMS[i].Value != st.CheckMS[j].Value {
			return st.CheckMS[i].Value > st.CheckMS[j].Value
		}
		return st.CheckMS[i].Name < st.CheckMS[j].Name
	})
	return st, err
}

func merge(dst, src map[string]int) {
	for k, v := range src {
		dst[k] += v
	}
}

// topN returns m's n largest counts, largest first, names breaking ties.
func topN(m map[string]int, n int) []NameCount {
	out := make([]NameCount, 0, len(m))
	for k, v := range m {
		out = append(out, NameCount{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// pruneStats removes the hours before limit, in tx.
func pruneStats(tx *bolt.Tx, limit time.Time) error {
	b := tx.Bucket(bucketHours)
	if b == nil {
		return nil
	}
	end := hourKey(limit)
	c := b.Cursor()
	for k, _ := c.First(); k != nil && string(k) < string(end); k, _ = c.Next() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
