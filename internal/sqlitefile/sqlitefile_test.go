package sqlitefile

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestURI(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/tmp/a b/c.db":         "file:///tmp/a b/c.db",
		"/tmp/a?b#c%d.db":       "file:///tmp/a%3Fb%23c%25d.db",
		"//tmp/c.db":            "file:////tmp/c.db", // a path, not the host "tmp"
		"c.db":                  "file:c.db",
		"./file:x.db":           "file:./file:x.db",
		"dir/a?mode=ro#frag.db": "file:dir/a%3Fmode=ro%23frag.db",
	} {
		require.Equal(t, want, URI(path), path)
	}
}

func TestHasScheme(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"file:x.db", "FILE:x.db", "File:///tmp/x.db"} {
		require.True(t, HasScheme(p), p)
	}
	for _, p := range []string{"x.db", "./file:x.db", "file", "/file:x.db"} {
		require.False(t, HasScheme(p), p)
	}
}
