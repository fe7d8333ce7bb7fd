// Command genverdict writes policy/record_json.go, the verdict line's
// encoder: what encoding/json writes for a policy.Record, byte for byte,
// without reflection. It reads Record and every type it reaches (the
// checks' facts among them) with reflect, so a field added to any of them
// is encoded once the file is generated again; policy's tests fail until
// it is. Run it through go generate:
//
//	go generate ./policy
//
// which builds it with -tags jsongen, so that policy compiles without the
// file it is about to replace.
package main

import (
	"flag"
	"fmt"
	"os"
	"reflect"

	"mxguard/internal/jsongen"
	"mxguard/policy"
)

func main() {
	out := flag.String("o", "record_json.go", "the file to write")
	flag.Parse()
	res, err := jsongen.Generate(jsongen.Config{
		Root:       reflect.TypeFor[policy.Record](),
		Func:       "appendRecord",
		Generator:  "genverdict",
		Constraint: "!jsongen",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "genverdict:", err)
		os.Exit(1)
	}
	for _, f := range res.Fallbacks {
		fmt.Fprintln(os.Stderr, "genverdict: written by json.Marshal:", f)
	}
	if err := os.WriteFile(*out, res.Source, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "genverdict:", err)
		os.Exit(1)
	}
}
