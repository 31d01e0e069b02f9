package postgres

import (
	"strings"
	"testing"

	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// The words themselves (store.SearchWords) are tested in package store.

func TestSearchLiterals(t *testing.T) {
	require.Equal(t, "", searchQuery(7, "@@"))
	require.Equal(t, "'7/grace' & '7/hop':*", searchQuery(7, "Grace HOP"))
	require.Equal(t, "'12/ada':*", searchQuery(12, `"ada"*`))
	require.Equal(t, "'12/ada'", searchQuery(12, "ada ada ADA"), "each word once; no prefix that one begins")
	require.Equal(t, "'12/ada' & '12/love':*", searchQuery(12, "ada ada love"))
	require.Nil(t, contactLexemes(7, pool.Contact{TimeZone: "UTC"}), "the time zone is not searched")
	require.Equal(t, "'7/ada' '7/lovelace' '7/ada' '7/example' '7/com' '7/15551234567'",
		*contactLexemes(7, pool.Contact{Name: "Ada Lovelace", Email: "ada@example.com", PhoneNumber: "+15551234567"}))
	var b strings.Builder
	writeLexeme(&b, `it's a \ test`)
	require.Equal(t, `'it''s a \\ test'`, b.String())
}
