package confval

// The backend's STARTTLS and hand-over modes are read from the config
// (backend.starttls, backend.forward_client) and acted on by the proxy's
// forwarder. Both use these types, so the values the loader accepts are
// the values the forwarder switches on, with nothing to map between them.

// StartTLSMode is how the forwarder uses STARTTLS with the backend.
type StartTLSMode string

// The STARTTLS modes.
const (
	StartTLSNone          StartTLSMode = "none"          // never
	StartTLSOpportunistic StartTLSMode = "opportunistic" // when the backend offers it
	StartTLSRequired      StartTLSMode = "required"      // or no delivery
)

// EnumValues lists the modes for the config loader (yamlpos.Enum).
func (StartTLSMode) EnumValues() []string {
	return Values(StartTLSNone, StartTLSOpportunistic, StartTLSRequired)
}

// HandOver is how the original client is passed to the backend.
type HandOver string

// The hand-over modes (Postfix's XCLIENT_README and XFORWARD_README).
const (
	HandOverAuto     HandOver = "auto"     // XCLIENT with ADDR, else XFORWARD with ADDR, else none
	HandOverXClient  HandOver = "xclient"  // XCLIENT, or no delivery
	HandOverXForward HandOver = "xforward" // XFORWARD, or no delivery
	HandOverNone     HandOver = "none"
)

// EnumValues lists the modes for the config loader (yamlpos.Enum).
func (HandOver) EnumValues() []string {
	return Values(HandOverAuto, HandOverXClient, HandOverXForward, HandOverNone)
}
