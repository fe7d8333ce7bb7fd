package policy

import (
	"mxguard/checks/rcpt"
	"reflect"
	"slices"
	"strings"

	"mxguard/rules"
)

// Facts is what rules are written against: the transaction as the rules
// engine sees it. Field tags give each fact its name in rules (expr), in the
// verdict log (json) and its meaning (doc); "mxguard rules facts" prints the
// schema from these tags, so the documentation cannot drift from the code.
// Checks add their facts here as they land.
type Facts struct {
	Stage     string        `expr:"stage" json:"stage" doc:"the stage being decided" values:"connect,helo,mail,rcpt,data"`
	Client    ClientFacts   `expr:"client" json:"client"`
	HELO      string        `expr:"helo" json:"helo" doc:"the name the client gave in HELO/EHLO (\"\" before it did)"`
	ESMTP     bool          `expr:"esmtp" json:"esmtp" doc:"the client greeted with EHLO rather than HELO"`
	TLS       bool          `expr:"tls" json:"tls" doc:"the session is protected by STARTTLS"`
	TLSVer    string        `expr:"tls_version" json:"tls_version" doc:"the TLS version (\"\" without TLS)" values:"TLS 1.0,TLS 1.1,TLS 1.2,TLS 1.3,\"\""`
	MailFrom  AddressFacts  `expr:"mail_from" json:"mail_from" doc:"the envelope sender (MAIL FROM)"`
	Rcpt      AddressFacts  `expr:"rcpt" json:"rcpt" doc:"the recipient being decided (RCPT TO; stage rcpt only)"`
	RcptCheck rcpt.Facts    `expr:"rcpt_verify" json:"-" doc:"recipient verification of the recipient being decided (stage rcpt only)"`
	Rcpts     []string      `expr:"rcpts" json:"rcpts" doc:"the recipients accepted so far (all of them at data)"`
	RcptCount int           `expr:"rcpt_count" json:"rcpt_count" doc:"len(rcpts)"`
	Size      int           `expr:"size" json:"size" doc:"the message size in octets, line endings made canonical (0 before data)"`
	MessageID string        `expr:"message_id" json:"message_id" doc:"the Message-ID header without angle brackets (\"\" before data or when absent)"`
	SMTP      SMTPBehaviour `expr:"smtp" json:"smtp" doc:"how the client behaves on the wire (the session so far)"`
	Protocol  Protocol      `expr:"protocol" json:"protocol"`
	// Found holds every check's facts, each under the check's name
	// (dnsbl, spf, …): see Found, the checks' registry.
	Found
	From   FromFacts             `expr:"from" json:"from" doc:"the From header"`
	Checks map[string]CheckFacts `expr:"checks" json:"checks" doc:"every check run so far, by name: checks.NAME.result and checks.NAME.detail"`
	// Temperrors is derived from Checks, so that rules about temporary
	// failures need not walk the map (which costs the rule engine ten
	// times more) and replay of older lines without it still works.
	Temperrors []string `expr:"temperrors" json:"-" doc:"the names of the checks run so far whose result is temperror, sorted" values:"dnsbl,rdns,spf,dkim,dmarc,headers,greylist,harvest,mime,clamav,uribl,rspamd"`
}

// ClientFacts describe the SMTP client.
type ClientFacts struct {
	IP   string `expr:"ip" json:"ip" doc:"the client's IP address (from the PROXY header when behind a load balancer)"`
	Port int    `expr:"port" json:"port" doc:"the client's TCP port"`
	PTR  string `expr:"ptr" json:"ptr" doc:"the client's verified reverse DNS name (\"\" when unknown)"`
}

// AddressFacts split an envelope address.
type AddressFacts struct {
	Address string `expr:"address" json:"address" doc:"the whole address, \"\" for the null sender <>"`
	Local   string `expr:"local" json:"local" doc:"the part before the last @"`
	Domain  string `expr:"domain" json:"domain" doc:"the part after the last @, lower-cased"`
}

// CheckFacts is one check's result as rules see it.
type CheckFacts struct {
	Result string `expr:"result" json:"result" doc:"the check's result (\"\" when it has not run)" values:"pass,fail,softfail,policy,neutral,none,temperror,permerror,listed,known,unknown,unchecked,new,early,passed,allowed,infected,clean,scanned,\"\""`
	Detail string `expr:"detail" json:"detail" doc:"what the check found, for people"`
}

// FactDoc is one fact in the schema.
type FactDoc struct {
	Name, Type, Doc string
	// Values are every value the fact can take (of a list: its elements),
	// from its field's values tag; nil when it can take any.
	Values []string
}

// Schema lists every fact rules can use, with its type and meaning, in the
// order of the Facts struct.
func Schema() []FactDoc {
	var out []FactDoc
	schema(reflect.TypeOf(Facts{}), "", "", &out)
	return out
}

func schema(t reflect.Type, prefix, doc string, out *[]FactDoc) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := prefix + f.Tag.Get("expr")
		switch {
		case f.Anonymous:
			schema(f.Type, prefix, doc, out)
		case f.Type.Kind() == reflect.Struct:
			schema(f.Type, name+".", f.Tag.Get("doc"), out)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			*out = append(*out, FactDoc{Name: name, Type: "list of " + f.Type.Elem().Name(), Doc: f.Tag.Get("doc")})
			schema(f.Type.Elem(), name+"[].", "", out)
		case f.Type.Kind() == reflect.Map:
			*out = append(*out, FactDoc{Name: name, Type: "map of check results", Doc: f.Tag.Get("doc")})
			schema(f.Type.Elem(), name+".NAME.", "", out)
		default:
			d := f.Tag.Get("doc")
			if doc != "" {
				d = doc + ": " + d
			}
			*out = append(*out, FactDoc{Name: name, Type: typeName(f.Type), Doc: d, Values: rules.ParseValues(f.Tag.Get(rules.ValuesTag))})
		}
	}
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Int, reflect.Int64:
		return "int"
	case reflect.Float64:
		return "float"
	}
	return strings.ToLower(t.Kind().String())
}

// factsFor returns the facts for stage. The Facts value is kept on the
// transaction and refreshed in place, so a decision allocates little.
func (tx *Transaction) factsFor(stage Stage) *Facts {
	f := &tx.facts
	checks := f.Checks // reused: the stages of one transaction need one map
	if checks == nil {
		checks = make(map[string]CheckFacts, len(tx.Checks))
	}
	clear(checks)
	*f = Facts{
		Stage:     stage.String(),
		Client:    ClientFacts{IP: tx.Client.Addr.Addr().Unmap().String(), Port: int(tx.Client.Addr.Port()), PTR: tx.Client.PTR},
		HELO:      tx.Client.HELO,
		ESMTP:     tx.Client.ESMTP,
		MailFrom:  splitAddress(tx.MailFrom),
		Rcpts:     tx.Rcpts,
		RcptCount: len(tx.Rcpts),
		Size:      int(tx.Size),
		MessageID: tx.MessageID,
		Protocol:  tx.Protocol,
		Found:     tx.found,
		From:      tx.fromFacts,
		Checks:    checks,
	}
	if tx.Client.TLS != nil {
		f.TLS, f.TLSVer = true, tx.Client.TLS.Version
	}
	if b := tx.Client.SMTP; b != nil {
		f.SMTP = *b
	}
	if stage == StageRcpt {
		f.Rcpt = splitAddress(tx.Rcpt)
		f.RcptCheck = tx.rcptVerify
	}
	temps := f.Temperrors[:0]
	for k, v := range tx.Checks {
		f.Checks[k] = CheckFacts{Result: v.Result, Detail: v.Detail}
		if v.Result == ResultTemperror {
			temps = append(temps, k)
		}
	}
	if stage == StageRcpt {
		// The per-recipient checks' answers about this recipient.
		for k, v := range tx.rcptNow {
			f.Checks[k] = CheckFacts{Result: v.Result, Detail: v.Detail}
			if v.Result == ResultTemperror {
				temps = append(temps, k)
			}
		}
	}
	slices.Sort(temps)
	f.Temperrors = temps
	return f
}

func splitAddress(a string) AddressFacts {
	i := strings.LastIndexByte(a, '@')
	if i < 0 {
		return AddressFacts{Address: a, Local: a}
	}
	return AddressFacts{Address: a, Local: a[:i], Domain: strings.ToLower(a[i+1:])}
}
