package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mxguard/config"
	"mxguard/console"
	"mxguard/held"
	"mxguard/rules"
)

const consoleUsage = `usage: mxguard console adduser [--users FILE | --config FILE] NAME

Adds the account NAME to the console's users file (console.users_file of
the configuration, or --users FILE), or sets a new password for it. The
password is read from the terminal (twice), or from the first line of
standard input when it is not a terminal. The file holds argon2id hashes
only; it is created with mode 0600 if missing. mxguard serve reads it at
start and on reload (SIGHUP): send it one for a new account or password.

Exit status: 0 done, 1 failure, 2 bad usage or configuration.

`

func cmdConsole(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "adduser" {
		fmt.Fprint(stderr, consoleUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return exitOK
		}
		return exitUsage
	}
	fs := flag.NewFlagSet("console adduser", flag.ContinueOnError)
	fs.SetOutput(stderr)
	usersFile := fs.String("users", "", "the users `FILE` (default: console.users_file of --config)")
	cfgPath := fs.String("config", "", "the configuration `FILE` naming console.users_file")
	fs.Usage = func() { fmt.Fprint(stderr, consoleUsage); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		return usageExit(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	name := fs.Arg(0)
	path := *usersFile
	switch {
	case path != "" && *cfgPath != "":
		fmt.Fprintln(stderr, "mxguard console adduser: --users and --config exclude each other")
		return exitUsage
	case path == "" && *cfgPath == "":
		fmt.Fprintln(stderr, "mxguard console adduser: give --users FILE or --config FILE")
		return exitUsage
	case path == "":
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		if path = cfg.Console.UsersFile; path == "" {
			fmt.Fprintf(stderr, "mxguard console adduser: %s has no console.users_file\n", *cfgPath)
			return exitUsage
		}
	}
	password, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mxguard console adduser: %v\n", err)
		return exitFailed
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "mxguard console adduser: %v\n", err)
		return exitFailed
	}
	b, err := console.AddUser(old, name, password)
	if err != nil {
		fmt.Fprintf(stderr, "mxguard console adduser: %v\n", err)
		return exitUsage
	}
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		fmt.Fprintf(stderr, "mxguard console adduser: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: %s set\n", path, name)
	return exitOK
}

// readPassword reads the password: twice from a terminal, without echo;
// else the first line of in.
func readPassword(in io.Reader, prompt io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		fd := int(f.Fd())
		a, err := readNoEcho(fd, in, prompt, "Password: ")
		if err != nil {
			return "", err
		}
		b, err := readNoEcho(fd, in, prompt, "Again: ")
		if err != nil {
			return "", err
		}
		if a != b {
			return "", errors.New("the passwords differ")
		}
		return a, nil
	}
	return firstLine(in)
}

// readNoEcho reads a line from the terminal fd with echo off.
func readNoEcho(fd int, in io.Reader, prompt io.Writer, ask string) (string, error) {
	fmt.Fprint(prompt, ask)
	defer fmt.Fprintln(prompt)
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	quiet := *t
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, t) }()
	return firstLine(in)
}

// firstLine reads one line of in, without its end.
func firstLine(in io.Reader) (string, error) {
	var b []byte
	buf := make([]byte, 1)
	// Byte by byte: a buffered reader would swallow what follows the line
	// (the second password).
	for len(b) < 4096 {
		n, err := in.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			b = append(b, buf[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", err
		}
	}
	line := strings.TrimRight(string(b), "\r")
	if line == "" {
		return "", errors.New("no password given")
	}
	return line, nil
}

// writeFileAtomic replaces path with b: a reader sees the old file or the
// new one, never half of it.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// configError is a problem serve meets at start that is the
// configuration's to fix (exit 2): a users file that does not parse.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// consoleIndexFile is the console's verdict index, in state.dir.
const consoleIndexFile = "console.db"

// serveConsole starts the console of cfg: its index follows the verdict
// log until ctx ends, and its pages are served on console.address until
// closeConsole.
func (in *instance) serveConsole(ctx context.Context, cfg *config.Config) error {
	c := cfg.Console
	users, err := console.LoadUsers(c.UsersFile)
	if err != nil {
		return &configError{err}
	}
	if err := os.MkdirAll(cfg.State.Dir, 0o750); err != nil {
		return &stateDirError{err}
	}
	idx, err := console.OpenIndex(filepath.Join(cfg.State.Dir, consoleIndexFile), console.IndexOptions{Keep: c.Keep.Duration, Logger: in.log})
	if err != nil {
		return &stateDirError{err}
	}
	in.consoleIndex = idx
	// Caught up before the pages are served, so the first page is whole.
	if err := idx.CatchUp(cfg.VerdictLog); err != nil && !errors.Is(err, os.ErrNotExist) {
		in.log.Warn("console: reading the verdict log", "err", err)
	}
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		_ = idx.Follow(ctx, cfg.VerdictLog, time.Second)
	}()
	in.consoleDone = followed
	in.consoleUsersFile = c.UsersFile
	o := console.Options{Users: users, Index: idx, Secure: c.TLS != nil, Logger: in.log, MIME: cfg.MIME.Options(),
		Rules: func() *rules.Set { return in.cur.Load().eng.Rules() }}
	if in.held != nil {
		o.Held = consoleHeld{in}
	}
	h, err := console.New(o)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", c.Address)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if c.TLS != nil {
		cert, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key)
		if err != nil {
			l.Close()
			return &configError{fmt.Errorf("console.tls: %w", err)}
		}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	in.consoleSrv = h
	in.consoleHTTP = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute, MaxHeaderBytes: 64 << 10}
	in.log.Info("console", "addr", l.Addr().String(), "tls", c.TLS != nil)
	in.consoleAddr = l.Addr().String()
	go func() {
		if err := in.consoleHTTP.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			in.log.Error("console failed", "err", err)
		}
	}()
	return nil
}

// consoleHeld is the held-mail store as the console sees it: reads go to
// the store, releases and deletions through the same code as the control
// socket's, delivered and audited alike.
type consoleHeld struct{ in *instance }

func (h consoleHeld) List(f held.Filter) ([]held.Meta, error) { return h.in.held.List(f) }
func (h consoleHeld) Get(id string) (held.Meta, error)        { return h.in.held.Get(id) }
func (h consoleHeld) Content(id string) (*os.File, error)     { return h.in.held.Content(id) }
func (h consoleHeld) Release(ctx context.Context, id, by string, force bool) (held.Meta, error) {
	return h.in.releaseHeld(ctx, id, by, force)
}
func (h consoleHeld) Delete(id, by string) (held.Meta, error) { return h.in.deleteHeld(id, by) }

// closeConsole stops the console: its pages, then the index's reading of
// the log, then the index.
func (in *instance) closeConsole() {
	if in.consoleHTTP != nil {
		_ = in.consoleHTTP.Close()
	}
	if in.stopConsole != nil {
		in.stopConsole()
	}
	if in.consoleDone != nil {
		<-in.consoleDone
	}
	if in.consoleIndex != nil {
		_ = in.consoleIndex.Close()
	}
}

// reloadConsoleUsers reads the console's users file again, on SIGHUP: an
// admin adds an account without restarting the proxy. A file that does
// not parse leaves the accounts as they were.
func (in *instance) reloadConsoleUsers(cfg *config.Config) {
	if in.consoleSrv == nil || cfg.Console.UsersFile != in.consoleUsersFile {
		// Another console.users_file is a restart key (see restartKeys).
		return
	}
	u, err := console.LoadUsers(in.consoleUsersFile)
	if err != nil {
		in.log.Error("console: users file not reloaded, keeping the accounts as they were", "err", err)
		return
	}
	in.consoleSrv.SetUsers(u)
	in.log.Info("console: users file reloaded", "path", in.consoleUsersFile)
}
