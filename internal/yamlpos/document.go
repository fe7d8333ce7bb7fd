package yamlpos

// Turning bytes into the root node of a single YAML document, with the
// failures yaml.v3 reports (syntax errors, unknown anchors, extra documents,
// its own panics) converted to *PosError like everything the Decoder says.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ParseDocument parses data, the contents of file (the name used in error
// messages), as exactly one YAML document and returns that document's
// content node, ready for Decoder.Decode.
//
// An empty document (no content at all, only comments, or a lone null such
// as "~") returns (nil, nil), so each caller can word its own "empty file"
// message. Any other failure is returned as a *PosError: a syntax error as
// "FILE:LINE:COL: invalid YAML: ...", a second document ("---") as an
// error at its position, since it would otherwise be silently ignored, and
// a panic inside the YAML parser as an error at 1:1 rather than a crash.
func ParseDocument(file string, data []byte) (root *yaml.Node, err error) {
	defer func() {
		// yaml.v3 converts its own failures to errors but re-panics on
		// anything else; loading a file must never crash the daemon.
		if r := recover(); r != nil {
			root, err = nil, &PosError{File: file, Line: 1, Column: 1, Msg: oneLine(fmt.Sprintf("invalid YAML: parser failed: %v", r))}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, SyntaxError(file, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		// A second document would be silently ignored, and then the
		// operator edits the wrong one.
		return nil, &PosError{File: file, Line: max(extra.Line, 1), Column: max(extra.Column, 1), Msg: "expected a single YAML document, found a second one"}
	case !errors.Is(err, io.EOF):
		return nil, SyntaxError(file, data, err)
	}
	if len(doc.Content) == 0 || isNull(resolve(doc.Content[0])) {
		return nil, nil
	}
	return doc.Content[0], nil
}

var (
	lineRE   = regexp.MustCompile(`^yaml: line (\d+): `)
	anchorRE = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// SyntaxError positions err, an error returned by yaml.v3 while parsing
// data (the contents of file), as "FILE:LINE:COL: invalid YAML: ...".
// yaml.v3 gives only a line number, embedded in the text, so the column is
// 1. For an unknown anchor it gives nothing, so the position is that of the
// first "*name" in data. Errors without a position are put at 1:1.
func SyntaxError(file string, data []byte, err error) *PosError {
	msg := err.Error()
	line, col := 1, 1
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n > 0 {
			line = n
		}
		msg = msg[len(m[0]):]
	} else {
		if m := anchorRE.FindStringSubmatch(msg); m != nil {
			if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
				line = bytes.Count(data[:i], []byte("\n")) + 1
				col = i - bytes.LastIndexByte(data[:i], '\n')
			}
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &PosError{File: file, Line: line, Column: col, Msg: oneLine("invalid YAML: " + msg)}
}

// oneLine collapses whitespace runs, newlines included: messages must be
// one line, or the FILE:LINE:COL list breaks.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
