package config

// Rendering a Config back to YAML, for "mxguard config show": the whole
// effective configuration, only what differs from the defaults, or the
// defaults alone, the way "postconf", "postconf -n" and "postconf -d" show
// Postfix's. The output is a file Parse reads back to the same Config.

import (
	"bytes"
	"fmt"
	"net"
	"strings"

	"go.yaml.in/yaml/v3"

	"mxguard/checks/dnsbl"
)

// Marshal renders c as YAML, every key in the order of the Config type,
// with the values Parse stored (relative rules paths resolved, domains
// lower-cased, DNS servers with their port). Keys with no value (a
// listener without tls) are left out. Paths are printed, never the
// contents of the files they name.
func Marshal(c *Config) ([]byte, error) {
	n, err := toNode(c)
	if err != nil {
		return nil, err
	}
	annotate(n, c)
	return encode(n)
}

// MarshalChanged renders only the keys of c whose values differ from the
// defaults, the defaults that derive from other keys (backend.helo from
// hostname, backend.tls_server_name from backend.address) included. A
// mapping is descended into; a list that differs is printed whole. Since
// the required keys have no default, the result is itself a complete
// configuration that Parse reads back to c.
func MarshalChanged(c *Config) ([]byte, error) {
	n, err := toNode(c)
	if err != nil {
		return nil, err
	}
	d, err := toNode(derivedDefaults(c))
	if err != nil {
		return nil, err
	}
	diff, err := changed(n, d, "")
	if err != nil {
		return nil, err
	}
	if diff == nil {
		diff = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	return encode(diff)
}

// MarshalDefaults renders Default: every key with the value it takes when
// a file does not set it. The required keys are shown empty, with a
// comment.
func MarshalDefaults() ([]byte, error) {
	c := Default()
	n, err := toNode(c)
	if err != nil {
		return nil, err
	}
	annotate(n, c)
	for _, key := range []string{"hostname", "listen", "backend.address", "domains"} {
		if v := lookup(n, key); v != nil {
			v.LineComment = "required"
		}
	}
	return encode(n)
}

// derivedDefaults is Default with the defaults that Parse derives from
// other keys filled in from c.
func derivedDefaults(c *Config) *Config {
	d := Default()
	d.Backend.HELO = c.Hostname
	d.Hold.Normalize(c.State.Dir)
	if network, addr := c.Backend.Kind(); network == "tcp" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			d.Backend.TLSServerName = host
		}
	}
	return d
}

// annotate says, beside a key left empty, what the empty value means.
func annotate(n *yaml.Node, c *Config) {
	comments := map[string]string{
		"dns.servers":     "the servers of /etc/resolv.conf",
		"rules":           "the built-in default rules",
		"verdict_log":     "none",
		"hold.dir":        "held in state.dir",
		"console.address": "no console",
	}
	if c.Postmaster == "" && len(c.Domains) > 0 {
		comments["postmaster"] = c.PostmasterAddress()
	}
	for key, text := range comments {
		if v := lookup(n, key); v != nil && (v.Value == "" && len(v.Content) == 0) {
			v.LineComment = text
		}
	}
}

// toNode encodes v into a YAML node tree, without the keys whose value
// is null.
func toNode(v any) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dropNulls(&n)
	return &n, nil
}

func dropNulls(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := n.Content[i+1]; v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
				continue
			}
			kept = append(kept, n.Content[i], n.Content[i+1])
		}
		n.Content = kept
	}
	for _, c := range n.Content {
		dropNulls(c)
	}
}

// lookup returns the value node at a dotted path of mapping keys.
func lookup(n *yaml.Node, path string) *yaml.Node {
	for _, key := range splitPath(path) {
		var next *yaml.Node
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					next = n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '.' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return out
}

// itemDefaults are the defaults of the entries of the lists whose entries
// are mappings: the keys an entry leaves out.
var itemDefaults = map[string]any{"listen": Listener{}, "dnsbl": dnsbl.Config{}}

// changed returns the part of n, the value at path, that differs from
// def, or nil when nothing does. A list that differs is returned whole,
// but each of its entries without the keys that have their default.
func changed(n, def *yaml.Node, path string) (*yaml.Node, error) {
	if def != nil && n.Kind == yaml.MappingNode && def.Kind == yaml.MappingNode {
		out := &yaml.Node{Kind: yaml.MappingNode, Tag: n.Tag}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			d, err := changed(v, lookup(def, k.Value), strings.TrimPrefix(path+"."+k.Value, "."))
			if err != nil {
				return nil, err
			}
			if d != nil {
				out.Content = append(out.Content, k, d)
			}
		}
		if len(out.Content) == 0 {
			return nil, nil
		}
		return out, nil
	}
	if def != nil {
		same, err := equalNodes(n, def)
		if err != nil || same {
			return nil, err
		}
	}
	item, ok := itemDefaults[path]
	if n.Kind != yaml.SequenceNode || !ok {
		return n, nil
	}
	idef, err := toNode(item)
	if err != nil {
		return nil, err
	}
	out := &yaml.Node{Kind: yaml.SequenceNode, Tag: n.Tag, Style: n.Style}
	for _, entry := range n.Content {
		d, err := changed(entry, idef, "")
		if err != nil {
			return nil, err
		}
		if d == nil {
			d = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
		}
		out.Content = append(out.Content, d)
	}
	return out, nil
}

// equalNodes reports whether a and b print the same.
func equalNodes(a, b *yaml.Node) (bool, error) {
	x, err := encode(a)
	if err != nil {
		return false, err
	}
	y, err := encode(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}

func encode(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return buf.Bytes(), nil
}
