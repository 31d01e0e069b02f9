package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
	"modernc.org/sqlite"
)

// TestItemSearch_ASCIITokenizer checks what item_search relies on (see
// search.go): its tokenizer, 'ascii' with the slash a token character,
// cuts the text poolq_search_terms returns into exactly its terms, the
// pool's prefix and the words of store.SearchWords, and leaves them as
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
	_, err := db.ExecContext(ctx, `CREATE VIRTUAL TABLE f USING fts5(b, tokenize = "ascii tokenchars '/'");
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
	for i, w := range want {
		want[i] = "1234/" + w
	}
	slices.Sort(want)
	want = slices.Compact(want)
	_, err = db.ExecContext(ctx, `INSERT INTO f (rowid, b) SELECT 1, `+searchTermsFunc+`(1234, ?)`, text.String())
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

func TestJoinSearchTerms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(MemoryPath)
	defer db.Close()
	var got string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT `+searchTermsFunc+`(42, 'Zoë Ñúñez', NULL, 'zoe@exämple.org', '+15551234567')`).Scan(&got))
	require.Equal(t, "42/zoe 42/nunez 42/zoe 42/example 42/org 42/15551234567", got)
	require.NoError(t, db.QueryRowContext(ctx, `SELECT `+searchTermsFunc+`(7, 'x²y/z')`).Scan(&got))
	require.Equal(t, "7/x 7/y 7/z", got)
	require.NoError(t, db.QueryRowContext(ctx, `SELECT `+searchTermsFunc+`(42, NULL, '@', NULL)`).Scan(&got))
	require.Equal(t, "", got)
	require.NoError(t, db.QueryRowContext(ctx, `SELECT `+searchTermsFunc+`(42)`).Scan(&got))
	require.Equal(t, "", got)
	err := db.QueryRowContext(ctx, `SELECT `+searchTermsFunc+`(42, 42)`).Scan(&got)
	require.ErrorContains(t, err, "want text")
	err = db.QueryRowContext(ctx, `SELECT `+searchTermsFunc+`('42', 'ada')`).Scan(&got)
	require.ErrorContains(t, err, "want integer")
	err = db.QueryRowContext(ctx, `SELECT `+searchTermsFunc+`()`).Scan(&got)
	require.ErrorContains(t, err, "no pool id")
}

func TestFTSQuery(t *testing.T) {
	t.Parallel()
	require.Equal(t, "", ftsQuery(42, "@ + %"))
	require.Equal(t, `"42/ada" AND "42/exam"*`, ftsQuery(42, "ada@Exam"))
	require.Equal(t, `"7/x" AND "7/y"*`, ftsQuery(7, "x²y"))
	require.Equal(t, `"1/ada" AND "1/and"*`, ftsQuery(1, `"ada" ada* AND`))
	require.Equal(t, `"1/ada"`, ftsQuery(1, "ada ada ADA"), "each word once; no prefix that one begins")
	require.Equal(t, `"42/42"*`, ftsQuery(42, "42/"), "a slash is not a word's")
}

// TestItemSearch_CostOfOtherPools: a search in one pool reads that pool's
// entries of item_search, not those of other pools. Pool A holds 10 items
// of "Ada Lovelace"; another pool holds 20,000 items, of "Ada Byron" (they
// match A's searches) or of "Bea Byron" (they do not): the searches of A
// find the same items and read the same pages, within a few, either way.
// Pages are counted by SQLite (its page cache's hits and misses on the
// connection, see pagesRead): a deterministic cost, where a time would be
// noise on a shared machine.
//
// item_search was one index of the words of all pools, the pool a filter
// after the match: a prefix search of A ("ada") read every match of the
// other pool, its rowids and the rows they name (40,073 pages here, 41
// beside the items that do not match; 195 ms on a file beside 100,000
// matching items, 2 ms beside 1,000).
func TestItemSearch_CostOfOtherPools(t *testing.T) {
	if testing.Short() {
		t.Skip("no concurrency; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	t.Parallel()
	ctx := context.Background()
	searches := []string{"ada", "ad", "ada lovelace", "lovelace ada", "ada l"}
	// run returns the pages each search of A reads beside 20,000 items
	// of others.
	run := func(others string) map[string]int {
		st, err := Open(ctx, MemoryPath, Options{CheckCache: true})
		require.NoError(t, err)
		defer st.Close()
		at := time.Unix(1, 0)
		a := pool.Pool{UUID: uuid.New(), Name: "pool A", Description: "x", Type: pool.FIFO,
			MaxParallelItems: 10, MaxRetries: 3, IsActive: true, CreatedAt: at, UpdatedAt: at}
		b := a
		b.UUID, b.Name = uuid.New(), "pool B"
		named := func(n int, name string) []pool.Item {
			out := make([]pool.Item, n)
			for i := range out {
				out[i] = pool.Item{ContactUUID: uuid.New(), Status: pool.StatusPending, AddedAt: at,
					Contact: pool.Contact{Name: fmt.Sprintf("%s %d", name, i)}}
			}
			return out
		}
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			for _, p := range []pool.Pool{a, b} {
				if err := tx.InsertPool(ctx, p); err != nil {
					return err
				}
			}
			if _, err := tx.InsertItems(ctx, a.UUID, named(10, "Ada Lovelace")); err != nil {
				return err
			}
			_, err := tx.InsertItems(ctx, b.UUID, named(20_000, others))
			return err
		}))
		pages := make(map[string]int)
		for _, s := range searches {
			pages[s] = pagesRead(t, st.wc, func() { // a Read of an in-memory Store runs on st.wc
				require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
					got, total, err := tx.Items(ctx, a.UUID, pool.ItemQuery{Search: s, Page: 1, PerPage: 25})
					require.NoError(t, err)
					require.Len(t, got, 10, "search %q", s)
					require.Equal(t, 10, total, "search %q", s)
					return nil
				}))
			})
		}
		return pages
	}
	alike, unlike := run("Ada Byron"), run("Bea Byron")
	t.Logf("pages read beside 20,000 matching items: %v; beside 20,000 others: %v", alike, unlike)
	for _, s := range searches {
		require.LessOrEqual(t, alike[s], unlike[s]+8,
			"search %q in one pool: pages read beside 20,000 matching items of another pool, and beside 20,000 others", s)
	}
}

// pagesRead returns the pages of the database that fn has SQLite read on
// connection c: its page cache's hits and misses (SQLITE_DBSTATUS_CACHE_HIT
// and _MISS), which count every page asked for, in memory or not.
func pagesRead(t *testing.T, c *sql.Conn, fn func()) int {
	t.Helper()
	read := func() (n int) {
		require.NoError(t, c.Raw(func(dc any) error {
			s, ok := dc.(interface {
				Status(sqlite.DBStatusOp, bool) (int, int, error)
			})
			require.True(t, ok, "the driver's connection reports its status")
			for _, op := range []sqlite.DBStatusOp{sqlite.DBStatusCacheHit, sqlite.DBStatusCacheMiss} {
				v, _, err := s.Status(op, true)
				if err != nil {
					return err
				}
				n += v
			}
			return nil
		}))
		return n
	}
	read()
	fn()
	return read()
}
