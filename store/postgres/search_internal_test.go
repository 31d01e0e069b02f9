package postgres

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the SQLite store's tokenizer, as the reference of searchFold
)

func TestSearchWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"@ + %", nil},
		{"Ada Lovelace", []string{"ada", "lovelace"}},
		{"ada@Example.COM", []string{"ada", "example", "com"}},
		{"+15551234567", []string{"15551234567"}},
		{"Zoë Ñúñez", []string{"zoe", "nunez"}},
		{"zoe@exämple.org", []string{"zoe", "example", "org"}},
		{"Ze\u0301phyr", []string{"zephyr"}},                // a decomposed é
		{"\u0301", nil},                                     // a mark alone folds to nothing
		{"ΣΊΣΥΦΟΣ σίσυφος", []string{"σίσυφοσ", "σίσυφοσ"}}, // final sigma; the tonos is precomposed
		{"Łódź Øresund straße", []string{"łodz", "øresund", "straße"}},
		{"İstanbul", []string{"istanbul"}},
		{`"ada" ada* AND`, []string{"ada", "ada", "and"}},
		{"٣٤ 北京", []string{"٣٤", "北京"}},
	} {
		require.Equal(t, tc.want, nilIfEmpty(searchWords(tc.in)), "words of %q", tc.in)
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestSearchLiterals(t *testing.T) {
	require.Equal(t, "", searchQuery(7, "@@"))
	require.Equal(t, "'7/grace' & '7/hop':*", searchQuery(7, "Grace HOP"))
	require.Equal(t, "'12/ada':*", searchQuery(12, `"ada"*`))
	require.Nil(t, contactLexemes(7, pool.Contact{TimeZone: "UTC"}), "the time zone is not searched")
	require.Equal(t, "'7/ada' '7/lovelace' '7/ada' '7/example' '7/com' '7/15551234567'",
		*contactLexemes(7, pool.Contact{Name: "Ada Lovelace", Email: "ada@example.com", PhoneNumber: "+15551234567"}))
	var b strings.Builder
	writeLexeme(&b, `it's a \ test`)
	require.Equal(t, `'it''s a \\ test'`, b.String())
}

// TestSearchFold_SQLite checks that searchFold folds the Latin letters as
// the SQLite store's tokenizer does (unicode61, remove_diacritics 2, see
// store/sqlite/migrations/0004_item_contacts.sql), so that both stores
// find the same items: every letter of Latin-1, Latin Extended-A and B,
// IPA, Greek, Cyrillic, Latin Extended Additional, Greek Extended, and the
// Kelvin and Angstrom signs.
func TestSearchFold_SQLite(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	require.NoError(t, err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err = db.Exec(`CREATE VIRTUAL TABLE f USING fts5(b, tokenize = 'unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE v USING fts5vocab(f, instance);`)
	require.NoError(t, err)
	var letters []rune
	for _, r := range []struct{ lo, hi rune }{{'A', 'z'}, {0xC0, 0x2AF}, {0x370, 0x52F}, {0x1E00, 0x1FFF}, {0x212A, 0x212B}} {
		for c := r.lo; c <= r.hi; c++ {
			if unicode.IsLetter(c) {
				letters = append(letters, c)
			}
		}
	}
	for _, c := range letters {
		_, err := db.Exec(`INSERT INTO f (rowid, b) VALUES (?, ?)`, int64(c), "x"+string(c)+"x")
		require.NoError(t, err)
	}
	rows, err := db.Query(`SELECT doc, term FROM v`)
	require.NoError(t, err)
	defer rows.Close()
	want := make(map[rune]string, len(letters))
	for rows.Next() {
		var doc int64
		var term string
		require.NoError(t, rows.Scan(&doc, &term))
		want[rune(doc)] = term
	}
	require.NoError(t, rows.Err())
	var diffs []string
	for _, c := range letters {
		got := "x" + searchFold(string(c)) + "x"
		if w := want[c]; got != w && !sqliteFoldsCaseOlder(c, w) {
			diffs = append(diffs, fmt.Sprintf("%U %c: sqlite %q, searchFold %q", c, c, w, got))
		}
	}
	require.Empty(t, diffs)
}

// sqliteFoldsCaseOlder reports whether SQLite's tokenizer leaves c, an
// upper-case letter, as it is: its case tables are older than Go's, and
// lack the letters Unicode added since (Ϳ, Ԩ), which searchFold folds.
func sqliteFoldsCaseOlder(c rune, sqlite string) bool {
	return unicode.IsUpper(c) && sqlite == "x"+string(c)+"x"
}
