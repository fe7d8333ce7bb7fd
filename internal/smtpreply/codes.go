package smtpreply

// Reply codes mxguard sends or reads (RFC 5321 §4.2.2 and §4.2.3, with
// the names of mox's smtp/codes.go), so that a code in the source says
// what it means.
const (
	C214Help                  = 214 // help message
	C220ServiceReady          = 220 // the greeting; ready for TLS after STARTTLS
	C221Closing               = 221 // answer to QUIT
	C250Completed             = 250 // requested action completed
	C251UserNotLocalWillFwd   = 251 // RCPT: recipient not local, will forward
	C252WithoutVrfy           = 252 // VRFY: cannot verify, will accept
	C354Continue              = 354 // DATA: send the content
	C421ServiceUnavail        = 421 // closing the connection
	C451LocalErr              = 451 // aborted: local error in processing
	C452StorageFull           = 452 // also too many recipients (§4.5.3.1.10)
	C500BadSyntax             = 500 // command unrecognized, or line too long
	C501BadParamSyntax        = 501 // syntax error in parameters or arguments
	C502CmdNotImpl            = 502 // command not implemented
	C503BadCmdSeq             = 503 // bad sequence of commands
	C550MailboxUnavail        = 550 // refused: mailbox unavailable, policy
	C552MailboxFull           = 552 // exceeded storage allocation (RFC 1870 §6.1: too big)
	C553BadMailbox            = 553 // mailbox name not allowed
	C554TransactionFailed     = 554 // transaction failed; no SMTP service here
	C555UnrecognizedAddrParam = 555 // MAIL or RCPT parameter not recognized
)

// Enhanced status codes mxguard sends (RFC 3463 §3; X.6.7 is RFC 6531
// §3.7.1's). The names follow mox's smtp/codes.go with the class in front,
// since mxguard's replies carry the whole code: Se, the class, the subject
// (Addr 1, Sys 3, Net 4, Proto 5, Media 6, Pol 7) and its number, then the
// detail and its number. A reply takes the code of its class: the test
// that every pair used together agrees in class holds them to it.
var (
	Se2Other00               = Enhanced{2, 0, 0} // success, nothing more to say
	Se2Addr1Other0           = Enhanced{2, 1, 0} // MAIL FROM taken
	Se2Addr1DestValid5       = Enhanced{2, 1, 5} // RCPT TO taken
	Se2Proto5Other0          = Enhanced{2, 5, 0} // VRFY: will take a message
	Se4Other00               = Enhanced{4, 0, 0} // temporary failure, no detail
	Se4Sys3Other0            = Enhanced{4, 3, 0} // local error (spool, rules, partial delivery)
	Se4Sys3NotAccepting2     = Enhanced{4, 3, 2} // shutting down
	Se4Net4NoAnswer1         = Enhanced{4, 4, 1} // backend unavailable
	Se4Net4BadConn2          = Enhanced{4, 4, 2} // backend connection failed; timeout
	Se4Proto5TooManyRcpts3   = Enhanced{4, 5, 3} // too many recipients
	Se4Pol7Other0            = Enhanced{4, 7, 0} // too many connections or errors
	Se4Pol7DeliveryNotAuth1  = Enhanced{4, 7, 1} // rate limit, tempfail rule
	Se5Addr1BadDestSyntax3   = Enhanced{5, 1, 3} // bad recipient address syntax
	Se5Addr1BadSenderSyntax7 = Enhanced{5, 1, 7} // bad sender address syntax
	Se5Sys3MsgTooBig4        = Enhanced{5, 3, 4} // message too big for the system
	Se5Proto5InvalidCmd1     = Enhanced{5, 5, 1} // invalid command, or out of sequence
	Se5Proto5SyntaxErr2      = Enhanced{5, 5, 2} // syntax error
	Se5Proto5InvalidArgs4    = Enhanced{5, 5, 4} // invalid command arguments
	Se5Media6NonASCIIAddr7   = Enhanced{5, 6, 7} // non-ASCII address without SMTPUTF8
	Se5Pol7DeliveryNotAuth1  = Enhanced{5, 7, 1} // refused: relay, policy, score
)
