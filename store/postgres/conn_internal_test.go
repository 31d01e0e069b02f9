package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIdleSessionOff: the statement is sent to servers that know
// idle_session_timeout (14 and later) and to no other, where it would fail
// every connection.
func TestIdleSessionOff(t *testing.T) {
	for version, want := range map[string]bool{
		"13.16":                          false,
		"13.16 (Debian 13.16-1)":         false,
		"9.6.24":                         false,
		"":                               false,
		"14beta1":                        true,
		"14.0":                           true,
		"15.20 (Debian 15.20-0+deb12u1)": true,
		"17.2":                           true,
		"100.1":                          true,
	} {
		require.Equal(t, want, idleSessionOff(version) != "", "server_version %q", version)
	}
}
