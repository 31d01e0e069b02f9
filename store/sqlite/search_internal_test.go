package sqlite

import (
	"context"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// TestItemSearch_ASCIITokenizer checks what item_search relies on (see
// search.go): the 'ascii' tokenizer cuts the text poolq_search_words
// returns into exactly the words of store.SearchWords, and leaves them as
// they are, whatever their characters: every letter, decimal digit and
// mark of Unicode, each in a word of its own.
func TestItemSearch_ASCIITokenizer(t *testing.T) {
	if testing.Short() {
		t.Skip("one goroutine over all of Unicode; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	t.Parallel()
	ctx := context.Background()
	db := openDB(MemoryPath)
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err := db.ExecContext(ctx, `CREATE VIRTUAL TABLE f USING fts5(b, tokenize = 'ascii');
CREATE VIRTUAL TABLE v USING fts5vocab(f, row);`)
	require.NoError(t, err)
	var text strings.Builder
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) {
			text.WriteString(" q") // a mark alone would fold to nothing
			text.WriteRune(r)
		}
	}
	want := store.SearchWords(text.String())
	slices.Sort(want)
	want = slices.Compact(want)
	_, err = db.ExecContext(ctx, `INSERT INTO f (rowid, b) SELECT 1, `+searchWordsFunc+`(?)`, text.String())
	require.NoError(t, err)
	rows, err := db.QueryContext(ctx, `SELECT term FROM v ORDER BY term`)
	require.NoError(t, err)
	defer rows.Close()
	var got []string
	for rows.Next() {
		var term string
		require.NoError(t, rows.Scan(&term))
		got = append(got, term)
	}
	require.NoError(t, rows.Err())
	slices.Sort(got) // SQLite orders by bytes, as Go does; sorted again to be sure
	require.Greater(t, len(want), 100_000)
	require.Equal(t, want, got)
}

func TestJoinSearchWords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(MemoryPath)
	defer db.Close()
	var got string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT `+searchWordsFunc+`('Zoë Ñúñez', NULL, 'zoe@exämple.org', '+15551234567')`).Scan(&got))
	require.Equal(t, "zoe nunez zoe example org 15551234567", got)
	require.NoError(t, db.QueryRowContext(ctx, `SELECT `+searchWordsFunc+`(NULL, '@', NULL)`).Scan(&got))
	require.Equal(t, "", got)
	err := db.QueryRowContext(ctx, `SELECT `+searchWordsFunc+`(42)`).Scan(&got)
	require.ErrorContains(t, err, "want text")
}

func TestFTSQuery(t *testing.T) {
	t.Parallel()
	require.Equal(t, "", ftsQuery("@ + %"))
	require.Equal(t, `"ada" AND "exam"*`, ftsQuery("ada@Exam"))
	require.Equal(t, `"x" AND "y"*`, ftsQuery("x²y"))
	require.Equal(t, `"ada" AND "ada" AND "and"*`, ftsQuery(`"ada" ada* AND`))
}
