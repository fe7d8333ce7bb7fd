// Command mxguard is a security-focused inbound SMTP filtering proxy. It
// stands in front of a site's mail server, refuses what must be refused,
// and forwards the rest without ever losing a message it acknowledged.
//
// Usage:
//
//	mxguard serve --config FILE   run the proxy
//	mxguard config check|show     check a configuration, print the effective one
//	mxguard demo                  run it on an embedded configuration with a built-in backend
//	mxguard sink --dir DIR        a development backend that stores messages as files
//	mxguard rules lint|facts|replay|default
//	mxguard check ... MESSAGE.eml  explain a verdict
//	mxguard verdicts FILE...       search and summarise verdict logs
//	mxguard state list|show|delete list, show and delete greylist entries and rate-limit buckets
//	mxguard console adduser NAME   add an account to the web console
//	mxguard held list|show|release|delete  review the mail rules hold
//	mxguard version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `mxguard: a security-focused inbound SMTP filtering proxy

usage: mxguard <command> [flags]

commands:
  serve     run the proxy (mxguard serve --config FILE)
  config    check a configuration without serving; print the effective one
  demo      run the proxy on an embedded configuration, with a built-in backend
  sink      run a development backend that stores each message as a file
  rules     lint rules files, list the facts, replay a verdict log with new rules
  check     explain what mxguard would do with a stored message
  verdicts  search and summarise verdict logs
  state     list, show and delete greylist entries and rate-limit buckets
  console   add an account to the web console's users file
  held      list, show, release and delete the mail rules hold
  zone-serve  serve DNS zone files on loopback (for demos, benchmarks, tests)
  version   print the version

"mxguard <command> -h" describes a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return cmdServe(args[1:], stdout, stderr)
	case "config":
		return cmdConfig(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "sink":
		return cmdSink(args[1:], stdout, stderr)
	case "rules":
		return cmdRules(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "verdicts":
		return cmdVerdicts(args[1:], stdout, stderr)
	case "state":
		return cmdState(args[1:], stdout, stderr)
	case "console":
		return cmdConsole(args[1:], os.Stdin, stdout, stderr)
	case "held":
		return cmdHeld(args[1:], stdout, stderr)
	case "zone-serve":
		return cmdZoneServe(args[1:], stdout, stderr)
	case "version", "--version":
		if len(args) > 1 {
			fmt.Fprint(stderr, "usage: mxguard version\n\nPrints mxguard's version.\n")
			if args[1] == "-h" || args[1] == "--help" || args[1] == "-help" {
				return exitOK
			}
			return exitUsage
		}
		fmt.Fprintln(stdout, "mxguard", version)
		return exitOK
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "mxguard: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// usageExit maps a flag parsing error to an exit code: -h is a success.
func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}
