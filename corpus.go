// Package mxguard is the root of the module. It holds no logic: it only
// exports the part of the shared test corpus under testdata/ that the
// installed binary needs, since go:embed in cmd/mxguard cannot reach a
// parent folder.
package mxguard

import (
	"embed"
	"io/fs"
)

// demoFiles are the files "mxguard demo" serves and sends. Only these are
// linked into the binary; the rest of testdata/ stays out of it.
//
//go:embed testdata/zones/demo.zone
//go:embed testdata/messages/spf-aligned.eml testdata/messages/smuggled-end-of-data.eml testdata/messages/spoofed-from.eml
var demoFiles embed.FS

// Demo holds the DNS zone and the sample messages of "mxguard demo", named
// as under testdata/ ("zones/demo.zone", "messages/spoofed-from.eml"), so
// that the demo runs from the installed binary alone. The demo is its only
// production reader; the tests read the same files from testdata/, where
// the agreement test of check and serve covers the messages too.
var Demo fs.FS = mustSub(demoFiles, "testdata")

// mustSub is fs.Sub for a folder that is known to exist: embed.FS fails
// only on an invalid path, and "testdata" is a constant.
func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
