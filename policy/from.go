package policy

import "mxguard/checks/dmarc"

// FromFacts describe the RFC5322.From header.
type FromFacts struct {
	Domain string `expr:"domain" json:"domain" doc:"the domain of the one From address (\"\" when there is not exactly one)"`
	Local  bool   `expr:"local" json:"local" doc:"the From domain is one of ours (config domains): mail claiming to be from us"`
}

// fromFacts fills in the From facts from the header, for the data stage.
func (s *Session) fromFacts(tx *Transaction) {
	if tx.from != nil {
		return
	}
	// Parsed once here, before the data-stage checks start, for the
	// header checks and DMARC too.
	tx.from = dmarc.ParseFrom(tx.Header())
	if tx.from.Err != nil {
		return
	}
	d := tx.from.Domain
	tx.fromFacts = FromFacts{Domain: d, Local: s.LocalDomain(d)}
}
