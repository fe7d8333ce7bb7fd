package yamlpos

// Mapping entries and YAML merge keys (`<<: *base`) for the positioned
// decoder in yamlpos.go. Merges are expanded here, before struct fields are
// matched, so a merged key is checked exactly like one written in place.

import "go.yaml.in/yaml/v3"

// pair is one key/value of a mapping after merge keys are expanded.
type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's entries, expanding `<<` merge keys (explicit keys
// win over merged ones, as in YAML 1.1) and reporting duplicate and
// non-scalar keys. Each key name appears at most once in the result.
func (d *Decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	if ps, done := d.merged[n]; done {
		return ps // nil while n is being expanded; merge reports that
	}
	d.merged[n] = nil
	ps := d.expand(n, path, depth)
	if ps == nil {
		ps = []pair{} // non-nil marks "done"
	}
	d.merged[n] = ps
	return ps
}

func (d *Decoder) expand(n *yaml.Node, path string, depth int) []pair {
	var explicit, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		rk := resolve(k)
		if rk == nil || rk.Kind != yaml.ScalarNode {
			d.Errorf(k, "%sexpected a key name, got %s", prefix(path), Describe(k))
			continue
		}
		if rk.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val, path, depth+1)...)
			continue
		}
		if first, dup := seen[rk.Value]; dup {
			d.Errorf(k, "%sduplicate key %q (first defined at line %d column %d)", prefix(path), rk.Value, first.Line, first.Column)
			continue
		}
		seen[rk.Value] = k
		explicit = append(explicit, pair{key: k, val: val})
	}
	for _, p := range merged {
		name := resolve(p.key).Value
		if _, ok := seen[name]; ok {
			continue // overridden by an explicit key, or by an earlier merge
		}
		seen[name] = p.key
		explicit = append(explicit, p)
	}
	return explicit
}

// merge expands the value of a `<<` key: a mapping or a list of mappings.
func (d *Decoder) merge(val *yaml.Node, path string, depth int) []pair {
	if depth > maxDepth {
		d.Errorf(val, "%smerge nesting too deep", prefix(path))
		return nil
	}
	rv := resolve(val)
	switch {
	case rv != nil && rv.Kind == yaml.MappingNode:
		return d.mergeOne(val, rv, path, depth)
	case rv != nil && rv.Kind == yaml.SequenceNode:
		var out []pair
		for _, item := range rv.Content {
			ri := resolve(item)
			if ri == nil || ri.Kind != yaml.MappingNode {
				d.Errorf(item, "%smerge key: expected a mapping, got %s", prefix(path), Describe(item))
				continue
			}
			out = append(out, d.mergeOne(item, ri, path, depth+1)...)
		}
		return out
	}
	d.Errorf(val, "%smerge key: expected a mapping or a list of mappings, got %s", prefix(path), Describe(val))
	return nil
}

// mergeOne expands one merged mapping m, written as orig (usually *alias).
func (d *Decoder) mergeOne(orig, m *yaml.Node, path string, depth int) []pair {
	if ps, done := d.merged[m]; done && ps == nil {
		d.Errorf(orig, "%smerge key refers to a mapping that contains it", prefix(path))
		return nil
	}
	return d.pairs(m, path, depth)
}
