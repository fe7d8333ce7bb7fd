package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"mxguard/internal/sink"
)

func cmdSink(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:2526", "`address` to listen on")
	dir := fs.String("dir", "", "`folder` to store messages in (required)")
	lmtp := fs.Bool("lmtp", false, "speak LMTP instead of SMTP")
	bench := fs.Bool("bench", false, "for benchmarks: do not sync each file, log no line per message")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: mxguard sink --dir DIR [--listen ADDR] [--lmtp] [--bench]\n\n"+
			"Runs a development backend that accepts every message and stores it as\n"+
			"DIR/<time>-<id>.eml, answering 250 only once the file is on disk.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	s, err := sink.Start(sink.Options{Listen: *listen, Dir: *dir, LMTP: *lmtp, Logger: log, Bench: *bench})
	if err != nil {
		fmt.Fprintln(stderr, "mxguard sink:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "sink listening on %s, storing messages in %s\n", s.Addr(), *dir)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	<-sigs
	_ = s.Close()
	return exitOK
}
