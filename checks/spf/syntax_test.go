package spf

import "testing"

func TestCheckRecord(t *testing.T) {
	tests := []struct {
		record string
		ok     bool
	}{
		{"v=spf1", true},
		{"v=spf1 -all", true},
		{"V=SPF1 -ALL", true},
		{"v=spf1  a   -all  ", true},
		{"v=spf1 +a ~mx ?ptr -exists:%{i}.x.example.com all", true},
		{"v=spf1 a:example.com/24//64 mx:example.com//128 a/0", true},
		{"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ip6:::ffff:192.0.2.1", true},
		{"v=spf1 include:_spf.example.com redirect=_spf.example.net exp=explain.%{d}", true},
		{"v=spf1 moo.cow-far_out=man:dog/cat -all", true},
		{"v=spf1 a:%{ir}.%{v}._spf.%{d2} -all", true},
		{"v=spf1 exists:%{l1r-}.%{d}", true},
		{"v=spf1 a:foo.example.xn--zckzah", true},
		{"v=spf1 a:example.com.", true},
		{"v=spf1 exists:%%%_%-.example.com", true},
		{"v=spf1 unknown=%{c}", true}, // c is fine outside domain-specs

		{"v=spf1 -all moo", false},                                      // unknown mechanism (§4.6)
		{"v=spf1 -all.", false},                                         // §5.1
		{"v=spf1 -all/8", false},                                        //
		{"v=spf1 include", false},                                       // §5.2
		{"v=spf1 include:", false},                                      //
		{"v=spf1 include:example.com/24", false},                        // no cidr on include
		{"v=spf1 a:foo-bar", false},                                     // §7.1: domain-end
		{"v=spf1 a:museum", false},                                      //
		{"v=spf1 a:museum.", false},                                     //
		{"v=spf1 a:111.222.33.44", false},                               // numeric toplabel
		{"v=spf1 a:abc.123", false},                                     //
		{"v=spf1 a:example.-com", false},                                //
		{"v=spf1 a:example.com:8080", false},                            //
		{"v=spf1 a/33", false},                                          // §5.6 cidr ranges
		{"v=spf1 a//129", false},                                        //
		{"v=spf1 a/24/64", false},                                       //
		{"v=spf1 a/024", false},                                         // no leading zeros (§12)
		{"v=spf1 ip4:192.0.2.0/33", false},                              //
		{"v=spf1 ip4:2001:db8::1", false},                               //
		{"v=spf1 ip6:192.0.2.1", false},                                 //
		{"v=spf1 ip6:2001:db8::/129", false},                            //
		{"v=spf1 ip4:1.2.3.4:8080", false},                              //
		{"v=spf1 ptr/0", false},                                         // §5.5
		{"v=spf1 ptr:", false},                                          //
		{"v=spf1 redirect:example.com", false},                          // a modifier, not a mechanism
		{"v=spf1 -redirect=example.com", false},                         // modifiers take no qualifier
		{"v=spf1 redirect=a.example.com redirect=b.example.com", false}, // §6
		{"v=spf1 exp=a.example.com exp=b.example.com", false},           // §6
		{"v=spf1 redirect=", false},                                     //
		{"v=spf1 moo.cow/far_out=man:dog/cat", false},                   // §4.6.1
		{"v=spf1 a:%{x}.example.com", false},                            // §7.1 macro letters
		{"v=spf1 a:%{c}.example.com", false},                            // §7.2: c only in exp text
		{"v=spf1 a:%{d0}.example.com", false},                           // §7.3: nonzero digits
		{"v=spf1 a:%{d}x%.example.com", false},                          //
		{"v=spf1 a:%{d.example.com", false},                             //
		{"v=spf1 a:%.example.com", false},                               //
		{"v=spf1 a:ex\x00ample.com", false},                             // §7.1 visible characters only
		{"v=spf1 a:ex\u00e9ample.com", false},                           // §3.1 7-bit ASCII
		{"v=spf1 a\t-all", false},                                       // §4.6.1 spaces only
		{"v=spf1 ip4:192.0.2.5\n include:x.example.com", false},
	}
	for _, tt := range tests {
		err := checkRecord(tt.record)
		if (err == nil) != tt.ok {
			t.Errorf("checkRecord(%q) = %v, want ok=%v", tt.record, err, tt.ok)
		}
	}
}

func TestIsSPFRecord(t *testing.T) {
	for txt, want := range map[string]bool{
		"v=spf1":        true,
		"v=spf1 -all":   true,
		"V=SpF1 -all":   true,
		"v=spf10":       false,
		"v=spf1mx":      false,
		"v=spf1\t-all":  false,
		"spf1 v=spf1":   false,
		"":              false,
		"google-site-v": false,
	} {
		if got := isSPFRecord(txt); got != want {
			t.Errorf("isSPFRecord(%q) = %v, want %v", txt, got, want)
		}
	}
}

// FuzzCheckRecord asserts that the syntax check never panics on any record
// the library's selection (RFC 7208 §4.5) would hand it.
func FuzzCheckRecord(f *testing.F) {
	for _, s := range []string{"v=spf1 -all", "v=spf1 a:%{d}.x/24//64", "v=spf1 redirect=%{o}", "v=spf1 ip6:::1/128 exp=%{c}.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, record string) {
		if !isSPFRecord(record) {
			return
		}
		_ = checkRecord(record)
	})
}
