package proxy

import "time"

// deadline remembers the read or write deadline last set on a connection,
// so that a session need not re-arm it for every command: each
// SetReadDeadline or SetWriteDeadline call re-arms a runtime timer, and a
// busy server makes some twenty of them per message.
type deadline struct {
	at time.Time     // when the deadline in force was set; zero: none known
	d  time.Duration // the timeout it was set for
}

// renew reports whether a deadline of now+d must be set on the connection,
// and notes it as set if so. It need not be when the one in force was set
// for the same timeout less than d/64 ago: a timeout of minutes that ends
// up to 1/64 early (under 5 s of 5 min) changes nothing for SMTP.
func (l *deadline) renew(now time.Time, d time.Duration) bool {
	if d == l.d && !l.at.IsZero() && now.Sub(l.at) < d/64 {
		return false
	}
	l.at, l.d = now, d
	return true
}

// forget makes the next renew set the deadline: someone else set it.
func (l *deadline) forget() { *l = deadline{} }
