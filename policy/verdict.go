package policy

import (
	"strconv"
	"strings"

	"mxguard/internal/smtpreply"
)

// Action is what a verdict tells the proxy to do. The zero value is not a
// valid action and is treated as Tempfail, never as Accept: a verdict that was
// never filled in must not let mail through.
type Action int

// The actions a verdict can carry.
const (
	ActionInvalid Action = iota
	ActionAccept
	ActionReject
	ActionTempfail
	ActionQuarantine
	ActionTag
	// ActionHold keeps the message in mxguard's held-mail store instead
	// of delivering it: the client gets 250 once it is on disk.
	ActionHold
)

var actionNames = map[Action]string{
	ActionInvalid:    "invalid",
	ActionAccept:     "accept",
	ActionReject:     "reject",
	ActionTempfail:   "tempfail",
	ActionQuarantine: "quarantine",
	ActionTag:        "tag",
	ActionHold:       "hold",
}

// String returns the name used in rules files and logs.
func (a Action) String() string {
	if n, ok := actionNames[a]; ok {
		return n
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Refuses reports whether the proxy must refuse the command or message.
// A held message is not refused: the client hears 250 for it, and it is
// kept as the backend would have received it, our headers included.
func (a Action) Refuses() bool {
	return a != ActionAccept && a != ActionQuarantine && a != ActionTag && a != ActionHold
}

// Verdict is the engine's answer at one stage.
type Verdict struct {
	Action Action
	// Reply is what the client is told when Action refuses. For an accept it
	// is the zero Reply, and the proxy answers with its own success reply
	// (or, after DATA, the backend's).
	Reply smtpreply.Reply
	// Reason is a short machine-friendly cause for logs ("relay", "bare-lf").
	Reason string
}

// Accept is the verdict that lets the transaction go on.
var Accept = Verdict{Action: ActionAccept}

// The replies of the refusals the engine makes itself, and of the rules
// that refuse without a reply of their own.
var (
	replyRelayDenied = smtpreply.Reply{Code: smtpreply.C550MailboxUnavail, Enhanced: smtpreply.Se5Pol7DeliveryNotAuth1,
		Text: "relay access denied: we do not accept mail for that domain"}
	replySenderRouted = smtpreply.Reply{Code: smtpreply.C550MailboxUnavail, Enhanced: smtpreply.Se5Pol7DeliveryNotAuth1,
		Text: "relay access denied: sender-specified routing is not allowed"}
	replyRuleError = smtpreply.Reply{Code: smtpreply.C451LocalErr, Enhanced: smtpreply.Se4Sys3Other0,
		Text: "temporary local problem, try again later"}
	replyRuleReject = smtpreply.Reply{Code: smtpreply.C550MailboxUnavail, Enhanced: smtpreply.Se5Pol7DeliveryNotAuth1,
		Text: "refused by local policy"}
	replyRuleTempfail = smtpreply.Reply{Code: smtpreply.C451LocalErr, Enhanced: smtpreply.Se4Pol7DeliveryNotAuth1,
		Text: "temporarily refused by local policy, try again later"}
)

// Refuse builds a verdict for a refusing action with the reply the client
// gets. It is the one place that turns an action into a reply, so that the
// code class always follows the action: reject is 5xx, everything else that
// refuses (tempfail, and the invalid zero action) is 4xx, and the enhanced
// code takes that class (RFC 3463 §2). The text is trimmed (a rule's
// placeholders may leave spaces at its ends) and gets the session id.
func Refuse(action Action, reason string, r smtpreply.Reply, session string) Verdict {
	class := 4
	if action == ActionReject {
		class = 5
	} else if action != ActionTempfail {
		action = ActionTempfail
	}
	if r.Code/100 != class {
		r.Code = smtpreply.C451LocalErr
		if class == 5 {
			r.Code = smtpreply.C550MailboxUnavail
		}
	}
	r.Enhanced[0] = class
	if session != "" {
		r.Text = strings.TrimSpace(r.Text)
		r = r.WithSession(session)
	}
	return Verdict{Action: action, Reason: reason, Reply: r}
}
