package rcpt

// Facts are recipient verification's facts for the recipient being
// decided, as rules read them (rcpt_verify). Unlike the other checks'
// facts, they describe one recipient: the engine asks for each recipient
// at the rcpt stage and logs each answer apart (see policy/rcptverify.go).
type Facts struct {
	Result string `expr:"result" json:"result" doc:"the verification's result (unchecked: no method configured, or an address that cannot be asked)" values:"known,unknown,temperror,unchecked"`
	Detail string `expr:"detail" json:"detail" doc:"the backend's reply, or why the file does not list it"`
}
