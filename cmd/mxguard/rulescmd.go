package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"mxguard/internal/yamlpos"
	"mxguard/policy"
	"mxguard/rules"
)

const rulesUsage = `usage: mxguard rules <command>

commands:
  lint FILE...                          compile rules files; print errors as file:line:col
  facts                                 list every fact a condition can use
  replay --log VERDICTS.jsonl RULES...  what these rules would have done to logged mail
  default                               print the built-in default rule set
`

func cmdRules(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, rulesUsage)
		return exitUsage
	}
	switch args[0] {
	case "lint":
		return cmdRulesLint(args[1:], stdout, stderr)
	case "facts":
		return cmdRulesFacts(args[1:], stdout, stderr)
	case "replay":
		return cmdRulesReplay(args[1:], stdout, stderr)
	case "default":
		_, _ = stdout.Write(rules.Default)
		return exitOK
	case "-h", "--help", "help":
		fmt.Fprint(stdout, rulesUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "mxguard rules: unknown command %q\n\n%s", args[0], rulesUsage)
	return exitUsage
}

func cmdRulesLint(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rules lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: mxguard rules lint FILE...\n\nCompiles each rules file as serve would and prints every problem as\nfile:line:col: message. Exit 0 when all files are clean, 1 otherwise.\n")
	}
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	set, err := rules.LoadFiles(fs.Args(), policy.RulesOptions())
	if err != nil {
		fmt.Fprintln(stdout, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "ok: %d rules in %s\n", len(set.Rules), strings.Join(set.Files, ", "))
	return exitOK
}

func cmdRulesFacts(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rules facts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	md := fs.Bool("markdown", false, "print a Markdown table")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: mxguard rules facts [--markdown]\n\nLists every fact a rule's condition can use, with its type and meaning,\nand the values of the facts that take one of a fixed set.\n")
	}
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if *md {
		fmt.Fprintln(stdout, "| fact | type | meaning |\n|---|---|---|")
		for _, f := range policy.Schema() {
			doc := f.Doc + valuesText(f.Values, func(v string) string {
				if v == "" {
					v = `""`
				}
				return "`" + v + "`"
			})
			fmt.Fprintf(stdout, "| `%s` | %s | %s |\n", f.Name, f.Type, strings.ReplaceAll(doc, "|", `\|`))
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FACT\tTYPE\tMEANING")
	for _, f := range policy.Schema() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Name, f.Type, f.Doc+valuesText(f.Values, yamlpos.Lit))
	}
	_ = tw.Flush()
	return exitOK
}

// valuesText lists the values of a fact with a fixed set after its
// meaning, worded as "rules lint" words a value outside the set.
func valuesText(values []string, show func(string) string) string {
	if values == nil {
		return ""
	}
	shown := make([]string, len(values))
	for i, v := range values {
		shown[i] = show(v)
	}
	return "; one of " + strings.Join(shown, ", ")
}

func cmdRulesReplay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rules replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logPath := fs.String("log", "", "verdict log `file` to replay (- for standard input)")
	examples := fs.Int("examples", 3, "examples shown per kind of change")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: mxguard rules replay --log VERDICTS.jsonl RULES.yaml...\n\n"+
			"Decides every logged transaction again with the given rules, from the facts\n"+
			"and check results in the log: no DNS, no network. Prints what would change.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if *logPath == "" || fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	set, err := rules.LoadFiles(fs.Args(), policy.RulesOptions())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	var in io.Reader = os.Stdin
	if *logPath != "-" {
		f, err := os.Open(*logPath)
		if err != nil {
			fmt.Fprintln(stderr, "mxguard rules replay:", err)
			return exitFailed
		}
		defer f.Close()
		in = f
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	sum := policy.NewReplaySummary(set, *examples)
	bad, line := 0, 0
	for sc.Scan() {
		line++
		rec := new(policy.Record)
		if err := json.Unmarshal(sc.Bytes(), rec); err != nil || rec.Session == "" {
			fmt.Fprintf(stderr, "%s:%d: not a verdict line\n", *logPath, line)
			bad++
			continue
		}
		sum.Add(rec)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(stderr, "mxguard rules replay:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%d transactions replayed with %s: %d would change\n", sum.Total, strings.Join(set.Files, ", "), sum.Changed)
	for _, c := range sum.Changes() {
		fmt.Fprintf(stdout, "\n%s → %s: %d\n", c.From, c.To, c.Count)
		for _, e := range c.Examples {
			rec, got := e.Record, e.Got
			fmt.Fprintf(stdout, "  %s %s %s <%s> → %s: was %q (%s), now %s at %s (%s)\n",
				rec.Time.Format("2006-01-02 15:04:05"), e.ID(), rec.ClientIP, rec.MailFrom, strings.Join(rec.Rcpts, ","),
				rec.Reply, orDash(rec.Reason), got.Action, got.Stage, orDash(got.Reason))
		}
	}
	if bad > 0 {
		return exitFailed
	}
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
