package policy

import (
	"fmt"
	"strconv"
	"strings"
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
)

var actionNames = map[Action]string{
	ActionInvalid:    "invalid",
	ActionAccept:     "accept",
	ActionReject:     "reject",
	ActionTempfail:   "tempfail",
	ActionQuarantine: "quarantine",
	ActionTag:        "tag",
}

// String returns the name used in rules files and logs.
func (a Action) String() string {
	if n, ok := actionNames[a]; ok {
		return n
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Refuses reports whether the proxy must refuse the command or message.
func (a Action) Refuses() bool {
	return a != ActionAccept && a != ActionQuarantine && a != ActionTag
}

// Reply is an SMTP reply: a three-digit code, an RFC 3463 enhanced status
// code and text. The class of Code and of Enhanced always agree.
type Reply struct {
	Code     int
	Enhanced [3]int
	Text     string
}

// String renders the reply's last line as it goes on the wire, without CRLF.
func (r Reply) String() string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
}

// Valid reports whether the code is a reply code and both classes agree
// (RFC 3463 §2: the class of the enhanced code matches the reply's).
func (r Reply) Valid() bool {
	class := r.Code / 100
	return r.Code >= 200 && r.Code < 600 && r.Code/100 != 3 &&
		r.Enhanced[0] == class && r.Enhanced[1] >= 0 && r.Enhanced[2] >= 0
}

// Verdict is the engine's answer at one stage.
type Verdict struct {
	Action Action
	// Reply is what the client is told when Action refuses. For an accept it
	// is empty, and the proxy answers with its own success reply (or, after
	// DATA, the backend's).
	Reply Reply
	// Reason is a short machine-friendly cause for logs ("relay", "bare-lf").
	Reason string
}

// Accept is the verdict that lets the transaction go on.
var Accept = Verdict{Action: ActionAccept}

// Refuse builds a verdict for a refusing action with the reply the client
// gets. It is the one place that turns an action into a reply, so that the
// code class always follows the action: reject is 5xx, everything else that
// refuses (tempfail, and the invalid zero action) is 4xx.
func Refuse(action Action, reason string, code int, enhanced [3]int, text, session string) Verdict {
	class := 4
	if action == ActionReject {
		class = 5
	} else if action != ActionTempfail {
		action = ActionTempfail
	}
	if code/100 != class {
		code = class*100 + 51
		if class == 5 {
			code = 550
		}
	}
	enhanced[0] = class
	if session != "" {
		text = strings.TrimSpace(text) + " (session " + session + ")"
	}
	return Verdict{
		Action: action,
		Reason: reason,
		Reply:  Reply{Code: code, Enhanced: enhanced, Text: text},
	}
}
