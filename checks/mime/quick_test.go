package mime

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"mxguard/checks/check"
	"mxguard/checks/check/checktest"
)

// A message of up to check.QuickMaxBytes is walked at once on the deciding
// goroutine, with the answer Run gives; a bigger one is left to Run and
// its deadline.
func TestQuickSmallMessages(t *testing.T) {
	d := Facts{}.Define(check.Env{})
	if d.Quick == nil {
		t.Fatal("no Quick")
	}
	msg := "From: a@sender.test\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\n" +
		"Content-Type: application/octet-stream; name=x.exe\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAA\r\n--b--\r\n"
	v := checktest.View{Message: []byte(msg)}
	got, ok := d.Quick(v)
	want := d.Run(context.Background(), v)
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("Quick = %+v, %v; Run = %+v", got, ok, want)
	}
	if f, _ := got.Facts.(Facts); len(f.Executable) == 0 {
		t.Errorf("facts %+v: the executable was not seen", got.Facts)
	}
	big := checktest.View{Message: []byte(msg + strings.Repeat("x", check.QuickMaxBytes))}
	if res, ok := d.Quick(big); ok {
		t.Errorf("Quick answered %+v for a message over QuickMaxBytes", res)
	}
}
