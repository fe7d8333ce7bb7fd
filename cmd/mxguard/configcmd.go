package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"mxguard/checks/clamav"
	"mxguard/config"
	"mxguard/policy"
)

// defaultConfig is the configuration file serve, config check and config
// show read without --config.
const defaultConfig = "/etc/mxguard/mxguard.yaml"

const configUsage = `usage: mxguard config <command>

commands:
  check [--config FILE]                        check a configuration and the files it names, without serving
  show [--config FILE] [--changed|--defaults]  print the effective configuration, what differs from the defaults, or the defaults
`

func cmdConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, configUsage)
		return exitUsage
	}
	switch args[0] {
	case "check":
		return cmdConfigCheck(args[1:], stdout, stderr)
	case "show":
		return cmdConfigShow(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, configUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "mxguard config: unknown command %q\n\n%s", args[0], configUsage)
	return exitUsage
}

func cmdConfigCheck(args []string, stdout, stderr io.Writer) int {
	path, code, ok := configFlag("config check", "usage: mxguard config check [--config FILE]\n\n"+
		"Checks FILE as serve (and a reload) would, without serving: every key,\n"+
		"the rules files, the recipients file, the certificates and the DNS\n"+
		"lists; and whether clamd (clamav) takes a message of\n"+
		"limits.max_message_bytes. Every problem is printed as file:line:col: message. Exit 0 when\n"+
		"the configuration is good, 2 otherwise.\n\n", args, stderr)
	if !ok {
		return code
	}
	cfg, c, code := loadChecked(path, stderr)
	if cfg == nil {
		return code
	}
	set := c.rules
	files := "the built-in default rules"
	if set == nil {
		set = policy.DefaultRules()
	} else {
		files = strings.Join(set.Files, ", ")
	}
	if !checkClamd(cfg, path, stdout, stderr) {
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: ok: %d domains, %d rules from %s\n", path, len(cfg.Domains), len(set.Rules), files)
	return exitOK
}

// checkClamd asks the clamd of the clamav section, if any, for its version
// and whether it takes a message of limits.max_message_bytes: clamd has
// no command that reports its StreamMaxLength, and a message over it is
// held (451) whatever the rules say. It reports false for a clamd that
// refuses that size; one that does not answer is a warning (it may be
// restarting, and mxguard holds mail until it is back).
func checkClamd(cfg *config.Config, path string, stdout, stderr io.Writer) bool {
	if cfg.ClamAV.Address == "" {
		return true
	}
	cl, err := clamav.NewClient(cfg.ClamAV.Address)
	if err != nil { // the loader validated it
		fmt.Fprintf(stderr, "%s: clamav: %v\n", path, err)
		return false
	}
	timeout := max(cfg.ClamAV.Timeout.Duration, cfg.Limits.CheckTimeout.Duration, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	v, err := cl.Version(ctx)
	if err == nil {
		err = cl.Takes(ctx, int64(cfg.Limits.MaxMessageBytes))
	}
	switch {
	case errors.Is(err, clamav.ErrSizeLimit):
		fmt.Fprintf(stderr, "%s: clamav: clamd at %s refuses a stream of %s (limits.max_message_bytes): raise its StreamMaxLength (clamd.conf) to at least that, or every message that large is held with 451\n",
			path, cl, cfg.Limits.MaxMessageBytes)
		return false
	case err != nil:
		fmt.Fprintf(stderr, "%s: warning: clamav: clamd at %s does not answer (%v): until it does, every message is held with 451\n", path, cl, err)
		return true
	}
	fmt.Fprintf(stdout, "%s: clamav: clamd at %s (%s) takes a stream of %s (limits.max_message_bytes)\n", path, cl, v, cfg.Limits.MaxMessageBytes)
	return true
}

func cmdConfigShow(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration `file`")
	changed := fs.Bool("changed", false, "print only the settings that differ from the defaults (as postconf -n)")
	defaults := fs.Bool("defaults", false, "print the defaults, without reading a file (as postconf -d)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: mxguard config show [--config FILE] [--changed|--defaults]\n\n"+
			"Prints the configuration serve would run with FILE: every key, with its\n"+
			"default where FILE does not set it, as YAML that serve reads back to the\n"+
			"same configuration. Paths are printed, never the files' contents.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() > 0 || *changed && *defaults {
		fs.Usage()
		return exitUsage
	}
	var out []byte
	var err error
	if *defaults {
		out, err = config.MarshalDefaults()
	} else {
		cfg, lerr := config.Load(*path)
		if lerr != nil {
			fmt.Fprintln(stderr, lerr)
			return exitUsage
		}
		if *changed {
			out, err = config.MarshalChanged(cfg)
		} else {
			out, err = config.Marshal(cfg)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "mxguard config show:", err)
		return exitFailed
	}
	_, _ = stdout.Write(out)
	return exitOK
}
