package dkim

import (
	"context"
	"reflect"
	"testing"

	"mxguard/checks/check"
	"mxguard/checks/check/checktest"
)

// A signed message of ordinary size whose keys are cached is verified at
// once, on the deciding goroutine, with Run's answer; with a key not
// cached, or a message over check.QuickMaxBytes, Quick declines and asks
// DNS nothing.
func TestQuickSigned(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	d := Facts{}.Define(check.Env{Resolver: e.res})
	msg := sign(t, baseMessage(5000), k.ed, "ed")
	v := checktest.View{Message: msg}
	q := e.dns.Queries()
	if res, ok := d.Quick(v); ok {
		t.Fatalf("Quick answered %+v with the key not cached", res)
	}
	if n := e.dns.Queries() - q; n != 0 {
		t.Fatalf("Quick asked DNS %d times", n)
	}
	want := d.Run(context.Background(), v)
	if want.Result != Pass {
		t.Fatalf("Run: %+v", want)
	}
	q = e.dns.Queries()
	got, ok := d.Quick(v)
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("Quick with the key cached = %+v, %v; Run = %+v", got, ok, want)
	}
	big := checktest.View{Message: sign(t, baseMessage(check.QuickMaxBytes+1), k.ed, "ed")}
	if res, ok := d.Quick(big); ok {
		t.Errorf("Quick answered %+v for a message over QuickMaxBytes", res)
	}
	if n := e.dns.Queries() - q; n != 0 {
		t.Errorf("Quick asked DNS %d times", n)
	}
}
