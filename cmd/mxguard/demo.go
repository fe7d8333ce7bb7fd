package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"

	"mxguard"
	"mxguard/checks/resolver/dnstest"
	"mxguard/config"
	"mxguard/console"
	"mxguard/internal/sink"
)

// demoConfig is the embedded configuration of "mxguard demo": the real
// config loader reads it, and the backend is the built-in sink, so a new
// user sees the real relay path without installing a mail server.
var demoConfig = template.Must(template.New("demo.yaml").Parse(`# mxguard demo configuration (embedded)
hostname: mx.example.org
listen:
  - address: {{.Listen}}
backend:
  address: "builtin:{{.Mail}}"
domains: [example.org]
dns:
  servers: [{{.DNS}}]
spool:
  dir: {{.Spool}}
verdict_log: {{.Verdicts}}
state:
  dir: {{.State}}
hold:
  dir: {{.Held}}
limits:
  max_message_bytes: 10MiB
log:
  level: {{.Level}}
drain_timeout: 5s
{{- if .Console}}
console:
  address: {{.Console}}
  users_file: {{.Users}}
{{- end}}
`))

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:2525", "loopback `address` to listen on")
	dir := fs.String("dir", "mxguard-demo", "`folder` for the built-in backend's messages, the spool and the state store")
	once := fs.Bool("once", false, "exit after the demonstration instead of serving on")
	verbose := fs.Bool("v", false, "log at debug level")
	consoleAddr := fs.String("console", "", "also serve the web console on this loopback `address` (e.g. 127.0.0.1:8025), with an account made for the demo")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: mxguard demo [--listen ADDR] [--dir DIR] [--console ADDR] [--once]\n\n"+
			"Runs mxguard on an embedded configuration (hostname mx.example.org, mail for\n"+
			"example.org) in front of a built-in backend that stores each accepted message\n"+
			"as a file in DIR/mail. It sends %d messages through itself to show what it\n"+
			"does, then serves on ADDR until Ctrl-C so you can try your own client.\n\n", len(demoSteps()))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	mail, spool, verdicts := filepath.Join(*dir, "mail"), filepath.Join(*dir, "spool"), filepath.Join(*dir, "verdicts.jsonl")
	if err := os.MkdirAll(spool, 0o750); err != nil {
		fmt.Fprintln(stderr, "mxguard demo:", err)
		return exitFailed
	}
	level := config.LevelWarn
	if *verbose {
		level = config.LevelDebug
	}
	// The demo serves its own sample zone on loopback, so the checks run
	// for real without asking the machine's resolver.
	zone, err := dnstest.New(demoFile("zones/demo.zone"))
	if err != nil {
		fmt.Fprintln(stderr, "mxguard demo:", err)
		return exitFailed
	}
	defer zone.Close()
	users, password := "", ""
	if *consoleAddr != "" {
		if users, password, err = demoConsoleUser(*dir); err != nil {
			fmt.Fprintln(stderr, "mxguard demo:", err)
			return exitFailed
		}
	}
	var text bytes.Buffer
	_ = demoConfig.Execute(&text, map[string]string{"DNS": zone.Addr(), "Listen": *listen, "Mail": mail, "Spool": spool, "Verdicts": verdicts, "Level": string(level), "State": filepath.Join(*dir, "state"), "Held": filepath.Join(*dir, "held"),
		"Console": *consoleAddr, "Users": users})
	cfg, err := config.Parse("demo.yaml", text.Bytes())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	in, err := start(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "mxguard demo:", err)
		return exitFailed
	}
	addr := in.addrs[0]
	fmt.Fprintf(stdout, "mxguard is listening on %s for example.org; the built-in backend stores mail in %s\n", addr, mail)
	if in.consoleAddr != "" {
		fmt.Fprintf(stdout, "The web console is at http://%s/ (user demo, password %s)\n", in.consoleAddr, password)
	}
	ok := demonstrate(stdout, addr, in.cur.Load().sink)
	fmt.Fprintf(stdout, "Every verdict is in %s; read them with:\n  mxguard verdicts %s\n", verdicts, verdicts)
	if *once || !ok {
		in.shutdown()
		if !ok {
			return exitFailed
		}
		return exitOK
	}
	fmt.Fprintf(stdout, "\nTry it yourself, for example:\n  swaks --server %s --to user@example.org\nPress Ctrl-C to stop.\n", addr)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	<-sigs
	in.shutdown()
	return exitOK
}

// demoStep is one transaction of the demonstration.
type demoStep struct {
	title, from, rcpt, body, want string
}

// demoSteps are the demonstration's transactions: one relayed, one
// refused as relaying, one as SMTP smuggling, one as a DMARC forgery. The
// messages are those of the test corpus (testdata/messages), embedded.
func demoSteps() []demoStep {
	return []demoStep{
		{"1. A message from sender.test, which SPF authorises, is relayed with an Authentication-Results header;\n   the 250 carries the backend's queue id",
			"alice@sender.test", "user@example.org", demoFile("messages/spf-aligned.eml"), "250 "},
		{"2. A recipient outside example.org is refused: mxguard is never an open relay",
			"alice@sender.test", "someone@elsewhere.test", "", "550 "},
		{"3. A message with a smuggled second message behind <LF>.<LF> is refused",
			"alice@sender.test", "user@example.org", demoFile("messages/smuggled-end-of-data.eml"), "554 "},
		{"4. A message From bank.test, whose DMARC policy is reject, sent from an address bank.test does not authorise, is refused",
			"ceo@bank.test", "user@example.org", demoFile("messages/spoofed-from.eml"), "550 "},
	}
}

// demoFile is one of the demo's embedded files (mxguard.Demo). They are
// embedded at build time, where a missing one fails the build, so reading
// one cannot fail at run time.
func demoFile(name string) string {
	b, err := fs.ReadFile(mxguard.Demo, name)
	if err != nil {
		panic(fmt.Sprintf("demo: embedded file: %v", err))
	}
	return string(b)
}

// demonstrate sends the demoSteps through mxguard and prints each
// dialogue. It reports whether each got the answer it should.
func demonstrate(w io.Writer, addr string, sk *sink.Sink) bool {
	ok := true
	for _, st := range demoSteps() {
		fmt.Fprintf(w, "\n%s\n", st.title)
		got, err := converse(w, addr, st.from, st.rcpt, st.body)
		if err != nil {
			fmt.Fprintln(w, "   error:", err)
			ok = false
			continue
		}
		if !strings.HasPrefix(got, st.want) {
			fmt.Fprintf(w, "   unexpected: wanted a %s reply\n", strings.TrimSpace(st.want))
			ok = false
		}
	}
	fmt.Fprintf(w, "\nThe built-in backend holds %d message(s).\n", sk.Count())
	return ok && sk.Count() == 1
}

// converse runs one SMTP transaction and prints the dialogue; it returns
// the last reply.
func converse(w io.Writer, addr, from, rcpt, body string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	read := func() (string, error) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return "", err
			}
			line = strings.TrimRight(line, "\r\n")
			if len(line) < 4 || line[3] != '-' {
				fmt.Fprintf(w, "   S: %s\n", line)
				return line, nil
			}
		}
	}
	say := func(cmd string) (string, error) {
		fmt.Fprintf(w, "   C: %s\n", cmd)
		if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
			return "", err
		}
		return read()
	}
	if _, err := read(); err != nil {
		return "", err
	}
	last := ""
	for _, cmd := range []string{"EHLO client.sender.test", "MAIL FROM:<" + from + ">", "RCPT TO:<" + rcpt + ">"} {
		if last, err = say(cmd); err != nil {
			return "", err
		}
	}
	if strings.HasPrefix(last, "250") && body != "" {
		if last, err = say("DATA"); err != nil {
			return "", err
		}
		if !strings.HasPrefix(last, "354") {
			_, _ = say("QUIT")
			return last, nil
		}
		fmt.Fprintf(w, "   C: %s\n   C: .\n", strings.ReplaceAll(strings.TrimRight(strings.ReplaceAll(body, "\r\n", "\n"), "\n"), "\n", "\n   C: "))
		if _, err := io.WriteString(c, body+".\r\n"); err != nil {
			return "", err
		}
		if last, err = read(); err != nil {
			return "", err
		}
	}
	_, _ = say("QUIT")
	return last, nil
}

// demoConsoleUser writes the demo's console account, "demo" with a fresh
// random password, to a users file in dir, and returns the file and the
// password to print.
func demoConsoleUser(dir string) (path, password string, err error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	password = base64.RawURLEncoding.EncodeToString(b[:])
	content, err := console.AddUser(nil, "demo", password)
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "console-users")
	if err := writeFileAtomic(path, content, 0o600); err != nil {
		return "", "", err
	}
	return path, password, nil
}
