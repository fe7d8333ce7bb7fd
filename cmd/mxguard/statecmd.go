package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"mxguard/config"
	"mxguard/internal/state"
)

const stateUsage = `usage: mxguard state list   [--config FILE] [--prefix P | --client IP]
       mxguard state show   [--config FILE] KEY
       mxguard state delete [--config FILE] (KEY | --client IP)

Lists, shows and deletes the entries of the state store (rate-limit
buckets, greylist triplets and passed networks, counters, the recipient
cache). With state.redis it talks to Redis; with the embedded store, to the
running mxguard serve through state.dir/control.sock, or, when none runs,
to the file itself. --client IP selects the entries whose key names the
address or its network (IPv4 /24, IPv6 /64).

Exit status: 0 done, 1 failure (or no such entry), 2 bad usage or
configuration.

`

// adminStore is the store as the admin command reaches it.
type adminStore interface {
	Entries(prefix string) ([]state.Entry, error)
	Delete(key string) (bool, error)
	Close() error
}

// directStore is a store this process opened.
type directStore struct{ s state.Store }

func (d directStore) Entries(prefix string) ([]state.Entry, error) {
	var out []state.Entry
	err := d.s.Entries(context.Background(), prefix, func(e state.Entry) bool { out = append(out, e); return true })
	return out, err
}

func (d directStore) Delete(key string) (bool, error) { return d.s.Delete(context.Background(), key) }
func (d directStore) Close() error                    { return d.s.Close() }

func cmdState(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, stateUsage)
		return exitUsage
	}
	sub := args[0]
	switch sub {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, stateUsage)
		return exitOK
	case "list", "show", "delete":
	default:
		fmt.Fprintf(stderr, "mxguard state: unknown subcommand %q\n\n%s", sub, stateUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("state "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfig, "configuration `file`")
	prefix, client := new(string), new(string)
	if sub == "list" {
		prefix = fs.String("prefix", "", "list the entries whose key starts with `P`")
	}
	if sub != "show" {
		client = fs.String("client", "", "the entries of the address `IP` and its network")
	}
	fs.Usage = func() { fmt.Fprint(stderr, stateUsage); fs.PrintDefaults() }
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return usageExit(err)
	}
	var key string
	var ip netip.Addr
	switch {
	case sub == "list" && len(pos) == 0 && (*prefix == "" || *client == ""):
	case sub == "show" && len(pos) == 1:
		key = pos[0]
	case sub == "delete" && len(pos) == 1 && *client == "":
		key = pos[0]
	case sub == "delete" && len(pos) == 0 && *client != "":
	default:
		fs.Usage()
		return exitUsage
	}
	if *client != "" {
		if ip, err = netip.ParseAddr(*client); err != nil {
			fmt.Fprintf(stderr, "mxguard state: --client: expected an IP address, got %q\n", *client)
			return exitUsage
		}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	st, err := openAdmin(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "mxguard state:", err)
		return exitFailed
	}
	defer st.Close()
	switch {
	case sub == "list":
		entries, err := st.Entries(*prefix)
		if err != nil {
			fmt.Fprintln(stderr, "mxguard state:", err)
			return exitFailed
		}
		for _, e := range sortEntries(filterClient(entries, ip)) {
			printEntry(stdout, e)
		}
	case sub == "show":
		entries, err := st.Entries(key)
		if err != nil {
			fmt.Fprintln(stderr, "mxguard state:", err)
			return exitFailed
		}
		for _, e := range entries {
			if e.Key == key {
				printEntry(stdout, e)
				return exitOK
			}
		}
		fmt.Fprintf(stderr, "mxguard state: no entry %q\n", key)
		return exitFailed
	case key != "":
		ok, err := st.Delete(key)
		if err != nil {
			fmt.Fprintln(stderr, "mxguard state:", err)
			return exitFailed
		}
		if !ok {
			fmt.Fprintf(stderr, "mxguard state: no entry %q\n", key)
			return exitFailed
		}
		fmt.Fprintf(stdout, "deleted %s\n", key)
	default:
		entries, err := st.Entries("")
		if err != nil {
			fmt.Fprintln(stderr, "mxguard state:", err)
			return exitFailed
		}
		n := 0
		for _, e := range sortEntries(filterClient(entries, ip)) {
			ok, err := st.Delete(e.Key)
			if err != nil {
				fmt.Fprintln(stderr, "mxguard state:", err)
				return exitFailed
			}
			if ok {
				fmt.Fprintf(stdout, "deleted %s\n", e.Key)
				n++
			}
		}
		fmt.Fprintf(stdout, "%d entries deleted\n", n)
	}
	return exitOK
}

// parseInterspersed parses flags that may come after the positional
// arguments too ("show KEY --config F").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// openAdmin reaches the store of cfg: Redis, or the running server's
// control socket, or the embedded store's file when no server runs.
func openAdmin(cfg *config.Config) (adminStore, error) {
	if r := cfg.State.Redis; r != nil {
		red, err := newRedisStore(r)
		if err != nil {
			return nil, err
		}
		return directStore{red}, nil
	}
	if c, ok := dialControl(cfg.State.Dir); ok {
		return c, nil
	}
	if _, err := os.Stat(filepath.Join(cfg.State.Dir, state.FileName)); errors.Is(err, os.ErrNotExist) {
		// Nothing stored yet; and the admin creates no files.
		return directStore{state.NewMemory(state.MemoryOptions{})}, nil
	}
	emb, err := state.OpenEmbedded(cfg.State.Dir, state.EmbeddedOptions{MemoryOptions: state.MemoryOptions{MaxEntries: cfg.State.MaxEntries}})
	if errors.Is(err, state.ErrLocked) {
		return nil, fmt.Errorf("%w, but nothing answers on %s", err, filepath.Join(cfg.State.Dir, controlSocket))
	}
	if err != nil {
		return nil, err
	}
	return directStore{emb}, nil
}

func sortEntries(es []state.Entry) []state.Entry {
	sort.Slice(es, func(i, j int) bool { return es[i].Key < es[j].Key })
	return es
}

func printEntry(w io.Writer, e state.Entry) {
	ttl := "no expiry"
	if e.TTL > 0 {
		ttl = "ttl " + e.TTL.Round(time.Second).String()
	}
	fmt.Fprintf(w, "%s\t%s\t%s\n", e.Key, e.Value, ttl)
}

// filterClient keeps the entries whose key names ip or its network
// (IPv4 /24, IPv6 /64, as the rate limits and the greylist group
// clients); all of them when ip is not valid.
func filterClient(es []state.Entry, ip netip.Addr) []state.Entry {
	if !ip.IsValid() {
		return es
	}
	ip = ip.Unmap()
	bits := 24
	if ip.Is6() {
		bits = 64
	}
	network := netip.PrefixFrom(ip, bits).Masked().String()
	var out []state.Entry
	for _, e := range es {
		if namesToken(e.Key, ip.String(), ip.Is6()) || namesToken(e.Key, network, ip.Is6()) {
			out = append(out, e)
		}
	}
	return out
}

// namesToken reports whether key contains tok as a whole address: not a
// part of a longer one (192.0.2.1 is not in 192.0.2.10 nor 10.192.0.2.1).
func namesToken(key, tok string, v6 bool) bool {
	addrChar := func(c byte) bool {
		switch {
		case c >= '0' && c <= '9', c == '.':
			return true
		case v6 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':'):
			return true
		}
		return false
	}
	for from := 0; ; {
		i := strings.Index(key[from:], tok)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(tok)
		// Before it, ':' separates a key's fields (rate:c:2001:db8::1).
		before := i == 0 || key[i-1] == ':' || !addrChar(key[i-1])
		if before && (end == len(key) || !addrChar(key[end]) && key[end] != '/') {
			return true
		}
		from = i + 1
	}
}
