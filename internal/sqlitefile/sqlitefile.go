// Package sqlitefile turns the path of a file into the SQLite URI filename
// that names it: store/sqlite opens its database so, and the examples open
// their lock files beside it the same way, so that both name the files the
// paths name, whatever their characters.
package sqlitefile

import (
	"fmt"
	"strings"
)

// URI returns the SQLite URI filename ("file:…", with no query: the
// caller appends "?" and its parameters) of the file at path. The
// characters that end or alter a URI's path ('%', '?', '#') are escaped,
// and an absolute path gets an empty authority ("file://" + path), so that
// one that begins with "//" is a path, not a host and a path.
func URI(path string) string {
	if strings.HasPrefix(path, "/") {
		return "file://" + escape(path)
	}
	return "file:" + escape(path)
}

// HasScheme reports whether path begins as a SQLite URI filename does
// ("file:", in any case).
func HasScheme(path string) bool {
	return len(path) >= 5 && strings.EqualFold(path[:5], "file:")
}

// escape escapes the characters that end or alter the path part of a
// SQLite URI filename.
func escape(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		switch c := path[i]; c {
		case '%', '?', '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
