// Package sink is mxguard's built-in development backend: an SMTP (or LMTP)
// server on loopback that stores every message it accepts as a file.
//
// It lets a new user watch mxguard relay real SMTP without installing a mail
// server first (backend address "builtin:DIR", or "mxguard sink"). It keeps
// the same promise a real backend does: it answers 250 only after the file
// is safely on disk.
package sink

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Sink is a running development backend.
type Sink struct {
	dir   string
	srv   *smtp.Server
	l     net.Listener
	count atomic.Int64
	log   *slog.Logger
	bench bool
}

// Options configures a Sink.
type Options struct {
	// Listen is the loopback address to listen on ("127.0.0.1:0" picks a
	// free port).
	Listen string
	// Dir receives one .eml file per accepted message; it is created.
	Dir  string
	LMTP bool
	// MaxMessageBytes bounds a message; 0 means 50 MiB.
	MaxMessageBytes int64
	Logger          *slog.Logger
	// Bench makes it a benchmark's backend: each file is written but not
	// synced, and no line is logged per message. It then costs what a
	// store's writing costs, not what the disk's flush does, which would
	// hide the cost of whatever stands in front of it.
	Bench bool
}

// Start listens and serves in the background until Close.
func Start(o Options) (*Sink, error) {
	if o.Dir == "" {
		return nil, errors.New("sink: no folder to store messages in")
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &Sink{dir: o.Dir, l: l, log: o.Logger, bench: o.Bench}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "sink.mxguard.invalid"
	s.srv.LMTP = o.LMTP
	s.srv.Network = "tcp"
	s.srv.MaxMessageBytes = 50 << 20
	if o.MaxMessageBytes > 0 {
		s.srv.MaxMessageBytes = o.MaxMessageBytes
	}
	s.srv.ReadTimeout = 5 * time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.EnableSMTPUTF8 = true
	// A store takes what mxguard forwards, and mxguard leaves overlong
	// lines to the rules (protocol.long_line): the sink must not refuse
	// them on its own, as go-smtp's 2000-octet default would.
	s.srv.MaxLineLength = 1 << 20
	s.srv.ErrorLog = slogPrinter{o.Logger}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// Addr is the address the sink listens on.
func (s *Sink) Addr() string { return s.l.Addr().String() }

// Count is the number of messages stored since Start.
func (s *Sink) Count() int64 { return s.count.Load() }

// Close stops the sink.
func (s *Sink) Close() error { return s.srv.Close() }

type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, v ...interface{}) {
	p.l.Debug("sink: " + fmt.Sprintf(format, v...))
}
func (p slogPrinter) Println(v ...interface{}) { p.l.Debug("sink: " + fmt.Sprint(v...)) }

// NewSession implements smtp.Backend.
func (s *Sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }

type session struct {
	s     *Sink
	from  string
	rcpts []string
}

func (x *session) Reset()        { x.from, x.rcpts = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.rcpts = append(x.rcpts, to)
	return nil
}

// Data stores the message as DIR/<id>.eml, with Return-Path and
// Delivered-To headers for the envelope, as a delivery agent would. The
// file is written under a temporary name and renamed, so a reader never
// sees half a message, and synced before the 250 goes out.
func (x *session) Data(r io.Reader) error {
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := strings.ToUpper(hex.EncodeToString(b[:]))
	tmp, err := os.CreateTemp(x.s.dir, ".incoming-*")
	if err != nil {
		return tempErr(err)
	}
	defer os.Remove(tmp.Name())
	fmt.Fprintf(tmp, "Return-Path: <%s>\r\n", x.from)
	for _, rc := range x.rcpts {
		fmt.Fprintf(tmp, "Delivered-To: %s\r\n", rc)
	}
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if !x.s.bench {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return tempErr(err)
		}
	}
	if err := tmp.Close(); err != nil {
		return tempErr(err)
	}
	name := filepath.Join(x.s.dir, time.Now().UTC().Format("20060102T150405")+"-"+id+".eml")
	if err := os.Rename(tmp.Name(), name); err != nil {
		return tempErr(err)
	}
	x.s.count.Add(1)
	if !x.s.bench {
		x.s.log.Info("sink stored message", "id", id, "file", name, "from", x.from, "rcpts", x.rcpts)
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + id}
}

func tempErr(err error) error {
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "sink: cannot store message: " + err.Error()}
}
