package console

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"mxguard/checks/mime"
	"mxguard/policy"
	"mxguard/rules"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the console's handler.
type Options struct {
	// Users are the accounts that may log in.
	Users *Users
	// Index is the verdict index the pages read.
	Index *Index
	// Secure marks the session cookie Secure: the console is served over
	// TLS.
	Secure bool
	// Logger records logins and every change an admin makes (the audit).
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Held is the held-mail store the held pages list, show, release
	// and delete from; nil leaves the pages out.
	Held HeldMail
	// MIME bounds the walk of a held message's parts (the mime check's
	// bounds: mime.Options{} is its defaults).
	MIME mime.Options
	// Rules returns the rules running now, for the rules page (nil: the
	// page lists none but still replays a pasted file).
	Rules func() *rules.Set
}

// Server is the console's HTTP handler.
type Server struct {
	opts     Options
	pages    map[string]*template.Template
	sessions *sessions
	logins   *loginLimiter
	// users are the accounts, replaced by SetUsers (a reload).
	users atomic.Pointer[Users]
	mux   *http.ServeMux
}

// cookieName is the session cookie's name. The __Host- prefix (RFC 6265bis
// §4.1.3.2) makes a browser refuse it unless it is Secure, host-only and
// for path /: with TLS no other host or path can plant or read it.
func (s *Server) cookieName() string {
	if s.opts.Secure {
		return "__Host-mxguard"
	}
	return "mxguard"
}

// contentSecurityPolicy allows the console's own styles and images and
// nothing else: no script at all, no inline style, no frame, no form
// posting elsewhere. A value from hostile mail that escaped its context
// would still have nothing to run.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New returns the console's handler.
func New(o Options) (*Server, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: o, sessions: newSessions(o.Now), logins: newLoginLimiter(o.Now), mux: http.NewServeMux()}
	s.users.Store(o.Users)
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	static, _ := fs.Sub(staticFS, "static") // the folder is embedded: cannot fail
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.authed(s.logout))
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/verdicts", http.StatusSeeOther)
	})
	s.mux.HandleFunc("GET /verdicts", s.authed(s.verdicts))
	s.mux.HandleFunc("GET /tx/{id}", s.authed(s.transaction))
	s.mux.HandleFunc("GET /charts", s.authed(s.charts))
	s.mux.HandleFunc("GET /rules", s.authed(s.rules))
	s.mux.Handle("POST /rules", limitBody(maxRulesForm, s.authed(s.replay)))
	if o.Held != nil {
		s.mux.HandleFunc("GET /held", s.authed(s.heldList))
		s.mux.HandleFunc("GET /held/{id}", s.authed(s.heldMessage))
		s.mux.Handle("POST /held/{id}/release", limitBody(4<<10, s.authed(s.heldRelease)))
		s.mux.Handle("POST /held/{id}/delete", limitBody(4<<10, s.authed(s.heldDelete)))
	}
	return s, nil
}

// SetUsers replaces the accounts: a reload of the users file. Sessions
// already open stay open (an account removed from the file can no longer
// log in; its open sessions end with their lifetimes or a restart).
func (s *Server) SetUsers(u *Users) { s.users.Store(u) }

// parseTemplates parses each page with the layout.
func (s *Server) parseTemplates() error {
	funcs := template.FuncMap{
		"time":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
		"join":  strings.Join,
		"state": stateText,
	}
	s.pages = map[string]*template.Template{}
	for _, page := range []string{"login", "verdicts", "transaction", "charts", "held", "heldmsg", "heldresult", "rules"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return fmt.Errorf("console: template %s: %w", page, err)
		}
		s.pages[page] = t
	}
	return nil
}

// ServeHTTP implements http.Handler: every response carries the headers
// that keep hostile content inert and pages out of caches and frames.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with the console's own form posts, which sameOrigin
	// must refuse (a sandboxed frame of another site sends it too).
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if s.opts.Secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if r.Method == http.MethodPost && !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// sameOrigin refuses a POST that a browser says comes from another site
// (Sec-Fetch-Site, or an Origin naming another host), a first line before
// the CSRF token.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

// pageData is what every page's template gets.
type pageData struct {
	// HasHeld shows the held pages in the menu.
	HasHeld bool
	User    string
	CSRF    string
	Title   string
	Error   string
	Data    any
}

// render writes page with data.
func (s *Server) render(w http.ResponseWriter, status int, page string, d pageData) {
	d.HasHeld = s.opts.Held != nil
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.pages[page].Execute(w, d); err != nil {
		s.opts.Logger.Warn("console: rendering a page", "page", page, "err", err)
	}
}

// authed wraps a handler that needs a logged-in admin; a POST must carry
// the session's CSRF token.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(s.cookieName())
		var ss *session
		if err == nil {
			ss = s.sessions.get(c.Value)
		}
		if ss == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "not logged in", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost && !sameToken(r.PostFormValue("csrf"), ss.csrf) {
			s.opts.Logger.Warn("console: a change without its CSRF token refused", "user", ss.user, "path", r.URL.Path, "client", r.RemoteAddr)
			http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
			return
		}
		h(w, r, ss)
	}
}

// loginCookie carries the login form's CSRF token before there is a
// session (login CSRF: a page of another site logging the admin's browser
// into an account of the attacker's).
const loginCookie = "mxguard-login"

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	tok := token()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/login", HttpOnly: true, Secure: s.opts.Secure, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	s.render(w, http.StatusOK, "login", pageData{Title: "Log in", CSRF: tok, Data: safeNext(r.URL.Query().Get("next"))})
}

// safeNext keeps a post-login destination only when it is a path of this
// console (an open redirect would make the login page a phishing tool).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/verdicts"
	}
	return next
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	addr := clientAddr(r)
	name, password := r.PostFormValue("user"), r.PostFormValue("password")
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(r.PostFormValue("csrf"), c.Value) {
		http.Error(w, "missing or wrong CSRF token: reload the login page", http.StatusForbidden)
		return
	}
	if s.logins.blocked(addr, name) {
		s.opts.Logger.Warn("console: login refused: too many failures", "user", name, "client", addr)
		s.render(w, http.StatusTooManyRequests, "login", pageData{Title: "Log in", CSRF: c.Value, Error: "Too many failed logins: try again later.", Data: "/verdicts"})
		return
	}
	users := s.users.Load()
	if !users.Check(name, password) {
		known := name
		if _, ok := users.hashes[name]; !ok {
			// Only real names are counted per name: made-up ones cannot
			// crowd the real ones out of the limiter's memory.
			known = ""
		}
		s.logins.failed(addr, known)
		s.opts.Logger.Warn("console: login failed", "user", name, "client", addr)
		s.render(w, http.StatusUnauthorized, "login", pageData{Title: "Log in", CSRF: c.Value, Error: "Wrong user name or password.", Data: safeNext(r.PostFormValue("next"))})
		return
	}
	id, _ := s.sessions.start(name)
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: id, Path: "/", HttpOnly: true, Secure: s.opts.Secure, SameSite: http.SameSiteStrictMode})
	s.opts.Logger.Info("console: login", "user", name, "client", addr)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, ss *session) {
	if c, err := r.Cookie(s.cookieName()); err == nil {
		s.sessions.end(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: "", Path: "/", HttpOnly: true, Secure: s.opts.Secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	s.opts.Logger.Info("console: logout", "user", ss.user)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// clientAddr is the request's peer address.
func clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// pageSize is the verdicts shown per page.
const pageSize = 50

// verdictQuery is the search form as the page shows it back.
type verdictQuery struct {
	Since, Until, Action, Rule, From, Rcpt, Client, Session, Check string
}

// filter reads the form into a filter; the error names the field.
func (q verdictQuery) filter(now time.Time) (*policy.VerdictFilter, error) {
	f := &policy.VerdictFilter{Rule: q.Rule, From: strings.ToLower(q.From), Rcpt: strings.ToLower(q.Rcpt), Session: q.Session}
	var err error
	if q.Since != "" {
		if f.Since, err = policy.ParseVerdictTime(q.Since, now); err != nil {
			return nil, fmt.Errorf("since: %w", err)
		}
	}
	if q.Until != "" {
		if f.Until, err = policy.ParseVerdictTime(q.Until, now); err != nil {
			return nil, fmt.Errorf("until: %w", err)
		}
	}
	if q.Action != "" {
		if err := f.AddActions(q.Action); err != nil {
			return nil, fmt.Errorf("action: %w", err)
		}
	}
	if q.Client != "" {
		if err := f.SetClient(q.Client); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	if q.Check != "" {
		if err := f.AddCheck(q.Check); err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
	}
	return f, nil
}

// verdictsData is the verdicts page.
type verdictsData struct {
	Query   verdictQuery
	Actions []string
	Records []*policy.Record
	Next    string
}

func (s *Server) verdicts(w http.ResponseWriter, r *http.Request, ss *session) {
	v := r.URL.Query()
	q := verdictQuery{Since: v.Get("since"), Until: v.Get("until"), Action: v.Get("action"), Rule: v.Get("rule"),
		From: v.Get("from"), Rcpt: v.Get("rcpt"), Client: v.Get("client"), Session: v.Get("session"), Check: v.Get("check")}
	d := pageData{User: ss.user, CSRF: ss.csrf, Title: "Verdicts"}
	data := verdictsData{Query: q, Actions: policy.VerdictActions}
	d.Data = &data
	f, err := q.filter(s.opts.Now())
	if err != nil {
		d.Error = err.Error()
		s.render(w, http.StatusBadRequest, "verdicts", d)
		return
	}
	if id := strings.TrimSpace(q.Session); id != "" {
		// An exact session or transaction id (from a refusal's reply)
		// goes straight to its page.
		if recs, err := s.opts.Index.Session(id); err == nil && len(recs) > 0 {
			http.Redirect(w, r, "/tx/"+url.PathEscape(id), http.StatusSeeOther)
			return
		}
	}
	page, err := s.opts.Index.Search(f, v.Get("after"), pageSize)
	if err != nil {
		d.Error = err.Error()
		s.render(w, http.StatusBadRequest, "verdicts", d)
		return
	}
	data.Records = page.Records
	if page.Next != "" {
		next := r.URL.Query()
		next.Set("after", page.Next)
		data.Next = "/verdicts?" + next.Encode()
	}
	s.render(w, http.StatusOK, "verdicts", d)
}

// txData is the transaction page.
type txData struct {
	ID      string
	Records []*policy.Record
}

func (s *Server) transaction(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.PathValue("id")
	recs, err := s.opts.Index.Session(id)
	d := pageData{User: ss.user, CSRF: ss.csrf, Title: "Session " + id, Data: &txData{ID: id, Records: recs}}
	switch {
	case err != nil:
		d.Error = err.Error()
		s.render(w, http.StatusInternalServerError, "transaction", d)
	case len(recs) == 0:
		d.Error = "No verdict has this session or transaction id (yet: the index reads the log every second)."
		s.render(w, http.StatusNotFound, "transaction", d)
	default:
		s.render(w, http.StatusOK, "transaction", d)
	}
}
