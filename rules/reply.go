package rules

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"mxguard/internal/smtpreply"
)

// replyPart is a piece of a reply text: literal text, or a ${expression}
// whose value is written in (e.g. "listed by ${join(dnsbl.listed, \", \")}").
type replyPart struct {
	text    string
	program *vm.Program
}

// maxReplyText bounds a rendered reply text: values come from the network
// (DNS TXT records, addresses) and must not make a reply line overlong.
const maxReplyText = 400

// compileReply compiles the ${...} placeholders of the reply text.
func (r *Rule) compileReply(o Options) error {
	text := r.Reply.Text
	if !strings.Contains(text, "${") {
		return nil
	}
	for text != "" {
		i := strings.Index(text, "${")
		if i < 0 {
			r.replyParts = append(r.replyParts, replyPart{text: text})
			break
		}
		j := strings.Index(text[i:], "}")
		if j < 0 {
			return fmt.Errorf("unclosed ${ in reply text")
		}
		if i > 0 {
			r.replyParts = append(r.replyParts, replyPart{text: text[:i]})
		}
		src := text[i+2 : i+j]
		opts := append([]expr.Option{expr.Env(envValue(o.Env))}, functions...)
		prog, err := expr.Compile(src, opts...)
		if err != nil {
			msg := oneLine(err.Error())
			var fe *file.Error
			if errors.As(err, &fe) && (strings.HasPrefix(fe.Message, "unknown name ") || strings.Contains(fe.Message, " has no field ")) {
				msg = fmt.Sprintf("unknown fact %s (\"mxguard rules facts\" lists them)", chainAt(src, fe.Line, fe.Column))
			}
			return fmt.Errorf("in ${%s}: %s", src, msg)
		}
		r.replyParts = append(r.replyParts, replyPart{program: prog})
		text = text[i+j+1:]
	}
	return nil
}

// RenderReply returns the rule's reply with its placeholders filled in from
// env. Values are made safe for an SMTP reply line: control characters go,
// and the text is bounded.
func (r *Rule) RenderReply(env any) smtpreply.Reply {
	rep := *r.Reply
	if len(r.replyParts) == 0 {
		return rep
	}
	var sb strings.Builder
	for _, p := range r.replyParts {
		if p.program == nil {
			sb.WriteString(p.text)
			continue
		}
		v, err := expr.Run(p.program, env)
		if err != nil {
			sb.WriteString("?")
			continue
		}
		sb.WriteString(sanitize(fmt.Sprint(v)))
	}
	rep.Text = sb.String()
	if len(rep.Text) > maxReplyText {
		// Cut between characters: back off to the start of the one the
		// bound falls in.
		n := maxReplyText
		for n > 0 && !utf8.RuneStart(rep.Text[n]) {
			n--
		}
		rep.Text = rep.Text[:n]
	}
	return rep
}

func sanitize(s string) string {
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, s)
}

func oneLine(s string) string {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s
	}
	return s[:i]
}
