package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"mxguard/internal/yamlpos"
)

// TestValidateChangesNothing: validate only reports. Every defaulting and
// normalising step belongs to Default and normalize, so that what "config
// show" prints, what a reload compares and what the runtime is built from
// are the same values whether or not validation ran. Each file is decoded
// and normalised twice into independent Configs (a deep copy that shares
// no slice or pointer), one of them is validated, and the two must still
// be equal.
func TestValidateChangesNothing(t *testing.T) {
	files, err := filepath.Glob("testdata/badconfig/*/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../mxguard.example.yaml")
	cases := map[string][]byte{
		"issue example": []byte(issueExample),
		// Values normalize rewrites, and keys whose defaults derive
		// from others, so a validate that redid either would show.
		"normalised": []byte(`hostname: MX.Example.org
listen: [{address: "127.0.0.1:2525"}]
backend: {address: "relay.example.org:25", starttls: opportunistic}
domains: [Example.ORG]
dns: {servers: ["127.0.0.1"]}
headers: {protected_domains: [Bank.TEST.]}
spool: {dir: ""}
recipients: {verify: file, file: /nonexistent}
dnsbl: [{zone: bl.example.net, codes: "127.0.0.2-127.0.0.11"}]
`),
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases[f] = data
	}
	ran := 0
	for name, data := range cases {
		root, perr := yamlpos.ParseDocument("config.yaml", data)
		if perr != nil || root == nil {
			continue // a file that is not YAML never reaches validate
		}
		ran++
		t.Run(name, func(t *testing.T) {
			decode := func() (*yamlpos.Decoder, *Config) {
				d := yamlpos.NewDecoder("config.yaml")
				c := Default()
				d.Decode(root, c)
				normalize(c, ".")
				return d, c
			}
			d, got := decode()
			_, want := decode()
			validate(d, got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("validate changed the config\n got %+v\nwant %+v", got, want)
			}
		})
	}
	if ran < 30 {
		t.Errorf("validated %d files, want at least 30", ran)
	}
}
