package proxy

import "mxguard/policy"

// fixedReply is a reply mxguard gives itself, not a rule's or the
// backend's: each is spelt once, here, and For adds the session id that
// lets an admin find the reason for a bounce in the logs.
type fixedReply policy.Reply

// The fixed replies that carry a session id.
var (
	replyTooBig       = fixedReply{Code: 552, Enhanced: [3]int{5, 3, 4}, Text: "message size exceeds fixed limit"} // RFC 1870 §6.1
	replyHeaderTooBig = fixedReply{Code: 552, Enhanced: [3]int{5, 3, 4}, Text: "message header section exceeds fixed limit"}
	replySpoolFailed  = fixedReply{Code: 451, Enhanced: [3]int{4, 3, 0}, Text: "local error storing message, try again later"}
	replyNotSMTP      = fixedReply{Code: 554, Enhanced: [3]int{5, 5, 1}, Text: "this is an SMTP server, closing connection"}
	// RFC 6531 §3.5: refused at MAIL, before the message is sent.
	replyNoUTF8Backend = fixedReply{Code: 553, Enhanced: [3]int{5, 6, 7}, Text: "SMTPUTF8 mail cannot be delivered here"}
	// RFC 5321 §4.3.2: after DATA, 554 says the transaction failed.
	replyNoUTF8AfterData = fixedReply{Code: 554, Enhanced: [3]int{5, 6, 7}, Text: "the backend does not support SMTPUTF8"}
)

// fixedReplies lists them, for the test that holds each to its class.
var fixedReplies = []fixedReply{replyTooBig, replyHeaderTooBig, replySpoolFailed, replyNotSMTP, replyNoUTF8Backend, replyNoUTF8AfterData}

// For is the reply for session.
func (f fixedReply) For(session string) policy.Reply {
	r := policy.Reply(f)
	r.Text = sessionText(r.Text, session)
	return r
}

// sessionText is text with the session id after it, as every refusal of
// mxguard's carries it.
func sessionText(text, session string) string { return text + " (session " + session + ")" }
