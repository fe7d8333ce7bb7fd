package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"strings"
	"testing"
)

// The public key in testdata/zones/bench.zone is the one smtpload signs with.
func TestBenchZoneHasKey(t *testing.T) {
	zone, err := os.ReadFile("../../testdata/zones/bench.zone")
	if err != nil {
		t.Fatal(err)
	}
	want := "p=" + base64.StdEncoding.EncodeToString(benchKey.Public().(ed25519.PublicKey))
	if !strings.Contains(string(zone), want) {
		t.Fatalf("testdata/zones/bench.zone lacks bench._domainkey.sender.test with %s", want)
	}
}
