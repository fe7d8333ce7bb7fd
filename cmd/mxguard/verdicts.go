package main

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"mxguard/policy"
)

const verdictsUsage = `usage: mxguard verdicts [flags] [FILE...]

Reads verdict logs (JSON Lines, one record per transaction) and prints the
records that match every filter given, as a table. FILE "-" or no FILE reads
standard input; gzip-compressed input (FILE.gz) is decompressed. Flags come
before the files.

Times (--since, --until) are RFC 3339 (2026-11-25T10:00:00Z), a date
(2026-11-25, midnight local time) or a duration back from now (90m, 1h, 7d,
1d12h). --since is inclusive, --until exclusive.

In the table, RCPTS shows the first recipient (accepted ones, then refused
ones) and +N for the others; RULES marks rules matched in monitor mode with *.

Exit status: 0 when every line was read (also when nothing matched), 1 when
a line was not a verdict or a file could not be read, 2 for bad usage.

flags:
`

const (
	verdictMaxLine    = 1 << 20 // records carry facts, a few KiB; 1 MiB is corruption
	verdictMaxReports = 20      // bad lines reported one by one before going quiet
	verdictFlushRows  = 1000    // table rows aligned together; bounds the memory held
)

// cmdVerdicts implements "mxguard verdicts": it filters verdict logs and
// prints the matching records as a table, as the original JSON lines
// (--json) or as counts (--summary). It is how an admin answers "why was
// this message refused?" and "what is this rule catching?" from the log
// the proxy writes, without jq.
func cmdVerdicts(args []string, stdout, stderr io.Writer) int {
	return runVerdicts(args, os.Stdin, stdout, stderr, time.Now())
}

// isTerminal reports whether r is a terminal (TCGETS answers on it).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// runVerdicts is cmdVerdicts with standard input and the clock given, so
// that tests can use them; dates are midnight in now's location.
func runVerdicts(args []string, stdin io.Reader, stdout, stderr io.Writer, now time.Time) int {
	fs := flag.NewFlagSet("verdicts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f policy.VerdictFilter
	timeFlag := func(dst *time.Time) func(string) error {
		return func(s string) (err error) { *dst, err = policy.ParseVerdictTime(s, now); return err }
	}
	fs.Func("since", "only records at or after `T`", timeFlag(&f.Since))
	fs.Func("until", "only records before `T`", timeFlag(&f.Until))
	fs.Func("action", "only records whose action is one of `A[,A...]` ("+strings.Join(policy.VerdictActions, ", ")+")", f.AddActions)
	fs.StringVar(&f.Rule, "rule", "", "only records where rule `R` matched, enforced or in monitor mode")
	fs.Func("check", "only records where check NAME gave RESULT, or ran at all without =RESULT (`NAME[=RESULT]`, repeatable)", f.AddCheck)
	fs.Func("from", "only records whose sender contains `S` (any case; <> is the null sender)", func(s string) error { f.From = strings.ToLower(s); return nil })
	fs.Func("rcpt", "only records with a recipient, accepted or refused, containing `R` (any case)", func(s string) error { f.Rcpt = strings.ToLower(s); return nil })
	fs.Func("client", "only records from client `IP`, or from a network in CIDR form (203.0.113.0/24)", f.SetClient)
	fs.StringVar(&f.Session, "session", "", "only records whose session or transaction id starts with `ID`")
	asJSON := fs.Bool("json", false, "print the matching lines as they are in the log, nothing else")
	summary := fs.Bool("summary", false, "print counts by action, rule, check result, sending domain and client instead of records")
	top := fs.Int("top", 10, "with --summary, list the `N` most frequent sending domains and clients (0: all)")
	fs.Usage = func() {
		fmt.Fprint(stderr, verdictsUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mxguard verdicts: "+format+"\n", a...)
		return exitUsage
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return bad("--since is not before --until: nothing could match")
	}
	if *asJSON && *summary {
		return bad("--json and --summary exclude each other")
	}
	if *top < 0 {
		return bad("--top %d: want 0 or more", *top)
	}

	v := &verdictReader{filter: &f, stdin: stdin, stdout: stdout, stderr: stderr, json: *asJSON, top: *top}
	if *summary {
		v.sum = newVerdictSummary()
	} else if !*asJSON {
		v.table = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	}
	files := fs.Args()
	if len(files) == 0 {
		if isTerminal(stdin) {
			// Nobody is piping a log in: the admin forgot the file.
			fs.Usage()
			return exitUsage
		}
		files = []string{"-"}
	}
	failed := false
	for _, name := range files {
		if err := v.readFile(name); err != nil {
			fmt.Fprintf(stderr, "mxguard verdicts: %v\n", err)
			failed = true
		}
	}
	v.finish()
	if v.bad > 0 {
		fmt.Fprintf(stderr, "mxguard verdicts: bad lines: %d\n", v.bad)
		failed = true
	}
	if failed {
		return exitFailed
	}
	return exitOK
}

// verdictReader streams files line by line through the filter and prints
// what matches in the chosen form.
type verdictReader struct {
	filter                  *policy.VerdictFilter
	stdin                   io.Reader
	stdout, stderr          io.Writer
	json                    bool
	table                   *tabwriter.Writer // nil with --json and --summary
	sum                     *verdictSummary   // set with --summary
	read, bad, matched, top int
}

// readFile reads one FILE argument; the error is for the file as a whole
// (bad lines are reported and counted as they come).
func (v *verdictReader) readFile(name string) error {
	r := v.stdin
	display := "<stdin>"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r, display = f, name
	}
	br := bufio.NewReaderSize(r, 64<<10)
	// Sniff the gzip magic too, so that "zcat" is not needed on a pipe.
	if magic, _ := br.Peek(2); strings.HasSuffix(name, ".gz") || bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", display, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	err := readVerdictLines(br, verdictMaxLine, func(n int, line []byte, tooLong bool) {
		v.line(display, n, line, tooLong)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", display, err)
	}
	return nil
}

func (v *verdictReader) line(file string, n int, line []byte, tooLong bool) {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 && !tooLong {
		return // a blank line, e.g. at the end of a hand-edited file
	}
	var rec policy.Record
	var err error
	switch {
	case tooLong:
		err = fmt.Errorf("longer than %d bytes", verdictMaxLine)
	case trimmed[0] != '{':
		// json.Unmarshal accepts "null" into a struct without complaint.
		err = errors.New("not a JSON object")
	default:
		err = json.Unmarshal(trimmed, &rec)
	}
	if err != nil {
		v.bad++
		if v.bad <= verdictMaxReports {
			fmt.Fprintf(v.stderr, "%s:%d: not a verdict line: %v\n", file, n, err)
		} else if v.bad == verdictMaxReports+1 {
			fmt.Fprintf(v.stderr, "mxguard verdicts: more bad lines, not shown\n")
		}
		return
	}
	v.read++
	if v.filter.Match(&rec) {
		v.record(&rec, line)
	}
}

// readVerdictLines calls fn with each line of r, without its line ending. Unlike
// bufio.Scanner, which stops at the first line over its limit, it skips a
// line longer than max (reporting it with tooLong) and goes on, so one
// corrupt line does not hide the rest of a log. line is reused.
func readVerdictLines(br *bufio.Reader, max int, fn func(n int, line []byte, tooLong bool)) error {
	var buf []byte
	for n := 1; ; n++ {
		buf = buf[:0]
		tooLong := false
		var err error
		for {
			var chunk []byte
			chunk, err = br.ReadSlice('\n')
			if !tooLong && len(buf)+len(chunk) > max+1 { // +1: the '\n'
				tooLong, buf = true, buf[:0]
			}
			if !tooLong {
				buf = append(buf, chunk...)
			}
			if err != bufio.ErrBufferFull {
				break
			}
		}
		if err != nil && err != io.EOF {
			return err
		}
		if len(buf) == 0 && !tooLong { // io.EOF right after a '\n'
			return nil
		}
		line := bytes.TrimSuffix(bytes.TrimSuffix(buf, []byte("\n")), []byte("\r"))
		fn(n, line, tooLong)
		if err == io.EOF {
			return nil
		}
	}
}

// record prints, or counts, one matching record.
func (v *verdictReader) record(r *policy.Record, line []byte) {
	v.matched++
	switch {
	case v.json:
		v.stdout.Write(append(line, '\n'))
	case v.sum != nil:
		v.sum.add(r)
	default:
		if v.matched == 1 {
			fmt.Fprintln(v.table, "TIME\tSESSION\tCLIENT_IP\tMAIL_FROM\tRCPTS\tACTION\tRULES\tREPLY")
		}
		fmt.Fprintln(v.table, strings.Join(verdictRow(r), "\t"))
		// tabwriter holds every row until Flush; flushing now and then
		// keeps memory bounded on a year of logs, at the cost of columns
		// that may shift between blocks.
		if v.matched%verdictFlushRows == 0 {
			v.table.Flush()
		}
	}
}

// finish ends the output with the counts; --json prints only lines.
func (v *verdictReader) finish() {
	switch {
	case v.json:
		return
	case v.sum != nil:
		v.sum.print(v.stdout, v.top)
	default:
		v.table.Flush()
	}
	fmt.Fprintf(v.stdout, "%d of %d verdicts\n", v.matched, v.read)
}

// verdictRow renders a record's cells. Everything is cleaned: addresses and
// replies come from the SMTP client and must not drive the terminal.
func verdictRow(r *policy.Record) []string {
	when := "-"
	if !r.Time.IsZero() {
		when = r.Time.UTC().Format(time.DateTime)
	}
	session := r.Session
	if r.Tx != "" {
		session = r.Tx // the session id plus a sequence number: more precise
	}
	rcpts := slices.Clone(r.Rcpts)
	for _, x := range r.Refused {
		rcpts = append(rcpts, x.Rcpt)
	}
	rcpt := strings.Join(rcpts[:min(1, len(rcpts))], "")
	if len(rcpts) > 1 {
		rcpt += " +" + strconv.Itoa(len(rcpts)-1)
	}
	var rules []string
	for _, k := range verdictRuleKeys(r) {
		name := k.name
		if k.mode == "monitor" {
			name += "*"
		}
		rules = append(rules, name)
	}
	return []string{
		when,
		verdictOrDash(verdictClean(session)),
		verdictOrDash(verdictClean(r.ClientIP)),
		verdictClean(r.Sender()),
		verdictOrDash(verdictClean(rcpt)),
		verdictOrDash(verdictClean(r.Action)),
		verdictOrDash(verdictClean(strings.Join(rules, ","))),
		verdictOrDash(verdictTruncate(verdictClean(r.Reply), 60)),
	}
}

type verdictRuleKey struct{ name, mode string }

// verdictRuleKeys lists the rules a record matched once each, in order: a rule
// matching at every RCPT is one reason, not several.
func verdictRuleKeys(r *policy.Record) []verdictRuleKey {
	var keys []verdictRuleKey
	for _, m := range r.Rules {
		k := verdictRuleKey{m.Name, m.Mode}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// verdictSummary counts matching records; each record counts once per
// action, rule, check, domain and client.
type verdictSummary struct {
	actions, rules, checks, domains, clients map[string]int
}

func newVerdictSummary() *verdictSummary {
	return &verdictSummary{map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}}
}

func (s *verdictSummary) add(r *policy.Record) {
	s.actions[verdictClean(verdictOrDash(r.Action))]++
	for _, k := range verdictRuleKeys(r) {
		s.rules[verdictClean(k.name)+" ("+verdictClean(k.mode)+")"]++
	}
	for name, c := range r.Checks {
		s.checks[verdictClean(name)+"="+verdictClean(c.Result)]++
	}
	domain := r.Sender()
	if domain != "<>" && domain != "-" {
		if d := policy.Domain(domain); d != "" {
			domain = d
		} else {
			domain = strings.ToLower(domain) // no @: show what there is
		}
	}
	s.domains[verdictClean(domain)]++
	s.clients[verdictClean(verdictOrDash(r.ClientIP))]++
}

func (s *verdictSummary) print(w io.Writer, top int) {
	title := func(t string) string {
		if top > 0 {
			return fmt.Sprintf("top %d %s", top, t)
		}
		return t
	}
	sections := []struct {
		title string
		m     map[string]int
		limit int
	}{
		{"by action", s.actions, 0},
		{"by rule", s.rules, 0},
		{"by check", s.checks, 0},
		{title("sending domains"), s.domains, top},
		{title("client IPs"), s.clients, top},
	}
	for _, sec := range sections {
		fmt.Fprintf(w, "%s:\n", sec.title)
		keys := slices.Collect(maps.Keys(sec.m))
		slices.SortFunc(keys, func(a, b string) int {
			return cmp.Or(cmp.Compare(sec.m[b], sec.m[a]), strings.Compare(a, b))
		})
		if sec.limit > 0 && len(keys) > sec.limit {
			keys = keys[:sec.limit]
		}
		if len(keys) == 0 {
			fmt.Fprintln(w, "  (none)")
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, k := range keys {
			fmt.Fprintf(tw, "  %s\t%d\n", k, sec.m[k])
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
}

// verdictClean makes a logged value safe to print on one line of a terminal:
// control characters (tabs and newlines too, which would break the
// table) and other non-printing runes become Go escapes.
func verdictClean(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == utf8.RuneError }) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// verdictTruncate shortens s to n runes, marking the cut with "…".
func verdictTruncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func verdictOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
