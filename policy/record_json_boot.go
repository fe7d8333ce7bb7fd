//go:build jsongen

package policy

import "mxguard/internal/jsonenc"

// appendRecord stands in for the generated encoder (record_json.go) while
// genverdict runs (-tags jsongen): a generated file that no longer
// compiles against Record must not stop its own regeneration.
func appendRecord(b []byte, r *Record) ([]byte, error) { return jsonenc.AppendMarshal(b, r) }
