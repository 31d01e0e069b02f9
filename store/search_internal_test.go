package store

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // SQLite's unicode61 tokenizer, the reference of latinBase
)

func TestSearchWords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"@ + %", nil},
		{"Ada Lovelace", []string{"ada", "lovelace"}},
		{"ada@Example.COM", []string{"ada", "example", "com"}},
		{"+15551234567", []string{"15551234567"}},
		{"+1 (555) 123-4567", []string{"1", "555", "123", "4567"}},
		{"Zoë Ñúñez", []string{"zoe", "nunez"}},
		{"zoe@exämple.org", []string{"zoe", "example", "org"}},
		{"Ze\u0301phyr", []string{"zephyr"}},                // a decomposed é
		{"\u0301", nil},                                     // a mark alone folds to nothing
		{"ΣΊΣΥΦΟΣ σίσυφος", []string{"σίσυφοσ", "σίσυφοσ"}}, // final sigma; the tonos is precomposed
		{"Łódź Øresund straße", []string{"łodz", "øresund", "straße"}},
		{"İstanbul", []string{"istanbul"}},
		{"IŞIK ışık", []string{"isik", "ısık"}}, // the dotless ı stays apart from i
		{`"ada" ada* AND`, []string{"ada", "ada", "and"}},
		{"٣٤ 北京", []string{"٣٤", "北京"}},              // decimal digits (Nd) of any script
		{"Flat x²y ½ Ⅻ", []string{"flat", "x", "y"}}, // ², ½ (No) and Ⅻ (Nl) are not decimal digits
		{"ab\uE000cd", []string{"ab", "cd"}},         // private use (Co) separates
		{"Ꭰ Ꭱ ꭰ", []string{"ꭰ", "ꭱ", "ꭰ"}},           // Cherokee folds to its small letters (Unicode 8.0)
		{"Ნინო", []string{"ნინო"}},                   // Georgian Mtavruli (Unicode 11.0)
		{"शर्मा", []string{"शरमा"}},                  // the virama (Mn) is dropped, the vowel sign ा (Mc) stays
		{"𞤀𞤣𞤤", []string{"𞤢𞤣𞤤"}},                     // Adlam (Unicode 9.0)
	} {
		got := SearchWords(tc.in)
		if len(got) == 0 {
			got = nil
		}
		require.Equal(t, tc.want, got, "words of %q", tc.in)
	}
}

// TestSearchWords_EveryRune checks SearchWords, and its ASCII shortcut,
// against the plain statement of its definition, for every rune: alone,
// inside a word, and between two words.
func TestSearchWords_EveryRune(t *testing.T) {
	t.Parallel()
	plain := func(s string) []string {
		var out []string
		for _, f := range strings.FieldsFunc(s, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
		}) {
			var w []rune
			for _, r := range f {
				if unicode.Is(unicode.Mn, r) {
					continue
				}
				if r != 'ı' {
					r = unicode.ToLower(unicode.ToUpper(r))
				}
				if base, ok := latinBase[r]; ok {
					r = base
				}
				w = append(w, r)
			}
			if len(w) > 0 {
				out = append(out, string(w))
			}
		}
		return out
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		for _, s := range []string{string(r), "Ab" + string(r) + "Ç", "x " + string(r) + " y"} {
			if got, want := SearchWords(s), plain(s); !slices.Equal(got, want) {
				t.Fatalf("SearchWords(%q) = %q, want %q", s, got, want)
			}
		}
	}
	require.Equal(t, []string{"ab", "cd"}, SearchWords("ab\xffcd"), "invalid UTF-8 separates, as U+FFFD")
	require.Equal(t, "x ab cd", string(AppendSearchText([]byte("x"), "\u0301 ab cd \u0301")))
	require.Equal(t, "x", string(AppendSearchText([]byte("x"), "\u0301 @")))
}

// TestSearchFold_Unicode61 checks that foldRune folds the Latin letters
// as SQLite's unicode61 tokenizer does with remove_diacritics 2 (how the
// SQLite store cut and folded words before migration 0009), so that a
// search of Latin text finds what it found then: every letter of Basic
// Latin, Latin-1, Latin Extended-A and B, IPA and Latin Extended
// Additional, and the Kelvin and Angstrom signs.
func TestSearchFold_Unicode61(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", ":memory:")
	require.NoError(t, err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err = db.Exec(`CREATE VIRTUAL TABLE f USING fts5(b, tokenize = 'unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE v USING fts5vocab(f, instance);`)
	require.NoError(t, err)
	var letters []rune
	for _, r := range []struct{ lo, hi rune }{{'A', 'z'}, {0xC0, 0x2AF}, {0x1E00, 0x1EFF}, {0x212A, 0x212B}} {
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
		if got := "x" + string(foldRune(c)) + "x"; got != want[c] {
			diffs = append(diffs, fmt.Sprintf("%U %c: unicode61 %q, foldRune %q", c, c, want[c], got))
		}
	}
	require.Empty(t, diffs)
}

func TestSearchQuery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		words  []string
		prefix string
	}{
		{"", nil, ""},
		{"@ + %", nil, ""},
		{"ada", nil, "ada"},
		{"Ada Love", []string{"ada"}, "love"},
		{"ada ada", []string{"ada"}, ""}, // the word; "adam" does not have it
		{"ada a", []string{"ada"}, ""},   // "ada" begins with "a"
		{"a ada", []string{"a"}, "ada"},  //
		{"ada love ada", []string{"ada", "love"}, ""},
		{"grace hopper grace hop", []string{"grace", "hopper"}, ""},
		{"x y x y z", []string{"x", "y"}, "z"}, // each word once, in order
		{strings.Repeat("a ", 127) + "b", []string{"a"}, "b"},
		{`"ada" ada* AND`, []string{"ada"}, "and"},
	} {
		words, prefix := SearchQuery(tc.in)
		require.Equal(t, tc.words, words, "%q", tc.in)
		require.Equal(t, tc.prefix, prefix, "%q", tc.in)
	}
}
