// Package boundedfile reads the files an admin names (configuration, rules)
// with the bounds every other input has: a regular file only, since a named
// pipe blocks the reader for ever and a device such as /dev/zero never
// ends, and at most a given size.
package boundedfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Read returns the content of the regular file at path, refusing anything
// else and files larger than max octets.
func Read(path string, max int64) ([]byte, error) {
	// Stat before opening: opening a named pipe for reading waits for a
	// writer.
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("not a regular file (%s)", kind(st.Mode()))}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than %d octets", max)}
	}
	return data, nil
}

// kind names a file mode that is not a regular file, for people.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}
