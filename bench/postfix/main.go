// Command postfix runs a private, throw-away Postfix on a loopback port for
// bench/run.sh, as the realistic backend: mail admins put mxguard in front
// of a real mail server, not in front of smtp-sink. It accepts mail for
// any recipient from 127.0.0.0/8, takes XFORWARD from there, queues what it
// accepts and discards it. It prints "listening on ADDR" once smtpd
// answers, and stops Postfix and removes its directory on SIGINT or
// SIGTERM. It needs root and the Debian postfix package.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"mxguard/internal/testpostfix"
)

func main() {
	inst, err := testpostfix.Launch(testpostfix.Options{XForwardHosts: "127.0.0.0/8"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "postfix:", err)
		os.Exit(1)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	fmt.Println("listening on", inst.Addr)
	<-stop
	inst.Stop()
}
