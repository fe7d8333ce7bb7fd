package proxy

import (
	"strconv"

	"mxguard/internal/smtpreply"
	"mxguard/policy"
)

// The replies mxguard gives itself that carry the session id, which lets
// an admin find the reason for a bounce in the logs: each is spelt once,
// here, and gets the id from smtpreply.Reply.WithSession where it is sent.
var (
	replyTooBig = smtpreply.Reply{Code: smtpreply.C552MailboxFull, Enhanced: smtpreply.Se5Sys3MsgTooBig4, // RFC 1870 §6.1
		Text: "message size exceeds fixed limit"}
	replyHeaderTooBig = smtpreply.Reply{Code: smtpreply.C552MailboxFull, Enhanced: smtpreply.Se5Sys3MsgTooBig4,
		Text: "message header section exceeds fixed limit"}
	replySpoolFailed = smtpreply.Reply{Code: smtpreply.C451LocalErr, Enhanced: smtpreply.Se4Sys3Other0,
		Text: "local error storing message, try again later"}
	replyNotSMTP = smtpreply.Reply{Code: smtpreply.C554TransactionFailed, Enhanced: smtpreply.Se5Proto5InvalidCmd1,
		Text: "this is an SMTP server, closing connection"}
	// RFC 6531 §3.5: refused at MAIL, before the message is sent.
	replyNoUTF8Backend = smtpreply.Reply{Code: smtpreply.C553BadMailbox, Enhanced: smtpreply.Se5Media6NonASCIIAddr7,
		Text: "SMTPUTF8 mail cannot be delivered here"}
	// RFC 5321 §4.3.2: after DATA, 554 says the transaction failed.
	replyNoUTF8AfterData = smtpreply.Reply{Code: smtpreply.C554TransactionFailed, Enhanced: smtpreply.Se5Media6NonASCIIAddr7,
		Text: "the backend does not support SMTPUTF8"}
	replyBackendUnavailable = smtpreply.Reply{Code: smtpreply.C451LocalErr, Enhanced: smtpreply.Se4Net4NoAnswer1,
		Text: "backend unavailable, try again later"}
	replyBackendFailed = smtpreply.Reply{Code: smtpreply.C451LocalErr, Enhanced: smtpreply.Se4Net4BadConn2,
		Text: "backend connection failed, try again later"}
)

// fixedReplies lists them, for the test that holds each to its class.
var fixedReplies = []smtpreply.Reply{replyTooBig, replyHeaderTooBig, replySpoolFailed, replyNotSMTP, replyNoUTF8Backend,
	replyNoUTF8AfterData, replyBackendUnavailable, replyBackendFailed}

// HeaderTooBig is the verdict on a message whose header section does not
// end within the limit: every reader takes the section whole, so serve
// refuses it before any rule, and so does mxguard check.
func HeaderTooBig(session string) policy.Verdict {
	return policy.Refuse(policy.ActionReject, "size", replyHeaderTooBig, session)
}

// replyRateMessages and replyRateRecipients refuse a client over a rate
// limit; key is the address or network counted. RFC 5321 §4.2.5: 451
// asks the sender to come back later.
func replyRateMessages(key, session string) smtpreply.Reply {
	return smtpreply.Reply{Code: smtpreply.C451LocalErr, Enhanced: smtpreply.Se4Pol7DeliveryNotAuth1,
		Text: "too many messages per minute from " + key + ", try again later"}.WithSession(session)
}

func replyRateRecipients(key, session string) smtpreply.Reply {
	return smtpreply.Reply{Code: smtpreply.C451LocalErr, Enhanced: smtpreply.Se4Pol7DeliveryNotAuth1,
		Text: "too many recipients per minute from " + key + ", try again later"}.WithSession(session)
}

// replyPartial is the 451 for an LMTP delivery the backend took for some
// recipients and not for others: a retry duplicates the message for the
// first ones, a 250 would lose it for the others, and duplicates win.
func replyPartial(ok, n int, session string) smtpreply.Reply {
	return smtpreply.Reply{Code: smtpreply.C451LocalErr, Enhanced: smtpreply.Se4Sys3Other0,
		Text: "backend took the message for " + strconv.Itoa(ok) + " of " + strconv.Itoa(n) + " recipients, try again later"}.WithSession(session)
}
