package postgres

import (
	"context"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

// The search of item listings (store.Tx.Items with q.Search).
//
// An item with contact fields keeps the words of its name, email and phone
// number in items.search, a tsvector, indexed by GIN (items_search). The
// words are cut and normalised here, in Go, never by PostgreSQL's text
// search parser or dictionaries (which cut "ada@example.com" as one email
// token, and depend on the server's locale and extensions), but by
// store.SearchWords, as in every store, so that all find the same items.
// Items.search holds folded words: a change of store.SearchWords needs a
// migration that recomputes the column. Each lexeme is the pool's internal
// id, a slash and the word ("42/lovelace"), so that the index holds each
// pool's words apart: a search reads the index entries of its
// own pool only, and its cost grows with the matches in the pool, not with
// the pool, nor with the other pools.
//
// A search becomes a tsquery in which every word must be a lexeme and the
// last may begin one: "grace hop" in pool 42 is '42/grace' & '42/hop':*.
// Both the tsvector and the tsquery are written as literals (their input
// functions take lexemes as they are), so nothing is normalised twice.

// contactLexemes returns the tsvector literal of a contact's words in pool
// k (see the comment at the top of this file), or nil (NULL) when it has
// none.
func contactLexemes(k int64, c pool.Contact) *string {
	if c.Name == "" && c.Email == "" && c.PhoneNumber == "" {
		return nil
	}
	prefix := strconv.FormatInt(k, 10) + "/"
	var b strings.Builder
	for _, field := range []string{c.Name, c.Email, c.PhoneNumber} {
		for _, w := range store.SearchWords(field) {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			writeLexeme(&b, prefix+w)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	s := b.String()
	return &s
}

// searchQuery returns the tsquery literal of a search in pool k: every
// word required, the last as a prefix (store.SearchQuery). "" when the
// search has no word.
func searchQuery(k int64, search string) string {
	words, last := store.SearchQuery(search)
	prefix := strconv.FormatInt(k, 10) + "/"
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteString(" & ")
		}
		writeLexeme(&b, prefix+w)
	}
	if last != "" {
		if b.Len() > 0 {
			b.WriteString(" & ")
		}
		writeLexeme(&b, prefix+last)
		b.WriteString(":*")
	}
	return b.String()
}

// writeLexeme writes a quoted lexeme, as tsvector and tsquery literals take
// it. Words hold neither quotes nor backslashes; they are escaped anyway.
func writeLexeme(b *strings.Builder, lex string) {
	b.WriteByte('\'')
	for _, r := range lex {
		if r == '\'' || r == '\\' {
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
}

const (
	// searchItemsSQL returns one page of the matches of a tsquery ($1)
	// with a status filter ($2, '' for none), each row with the number of
	// matches on all pages. The matches are found first, through
	// items_search alone (a CTE kept apart from the rest of the plan, so
	// that the planner cannot choose to walk a pool's items in id order
	// instead), then sorted and cut; the page's items are primary-key
	// seeks.
	searchItemsSQL = `WITH m AS MATERIALIZED (
    SELECT i.id FROM items i WHERE i.search @@ $1::tsquery AND ($2::text = '' OR i.status = $2)
), p AS (
    SELECT m.id FROM m WHERE m.id > $5 ORDER BY m.id LIMIT $3 OFFSET $4
)
SELECT ` + itemCols + `, (SELECT count(*) FROM m) FROM p JOIN items i ON i.id = p.id ORDER BY i.id`

	// searchCountSQL counts the matches: for a page past the last (or past
	// After's last match), which has no row to carry the count.
	searchCountSQL = `SELECT count(*) FROM items i WHERE i.search @@ $1::tsquery AND ($2::text = '' OR i.status = $2)`

	// The store's connections turn bitmap scans off (see planner), and a
	// GIN index is read by bitmap scans only: a search turns them on for
	// its own statements.
	bitmapOnSQL  = `SELECT set_config('enable_bitmapscan', 'on', true)`
	bitmapOffSQL = `SELECT set_config('enable_bitmapscan', 'off', true)`
)

// searchItems is Items with a search over the contacts' fields: the
// items of pool k matching q.Search (and q.Status), one page in insertion
// order, and their number. A search without a word matches nothing. One
// round trip; O(log n + m log m) for m matches in the pool, whatever the
// number of items (a page past the last, or past After's last match,
// costs a second round trip, to count).
func (t *txn) searchItems(ctx context.Context, k int64, poolID uuid.UUID, q pool.ItemQuery) ([]pool.Item, int, error) {
	const op = "search items"
	query := searchQuery(k, q.Search)
	if query == "" {
		return []pool.Item{}, 0, nil
	}
	status := string(q.Status)
	out := make([]pool.Item, 0, min(q.PerPage, 128))
	var total int64
	err := t.withBitmapScans(ctx, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			it, err := scanItem(rows, poolID, &total)
			if err != nil {
				return err
			}
			out = append(out, it)
		}
		return rows.Err()
	}, searchItemsSQL, query, status, q.PerPage, pool.Offset(q.Page, q.PerPage), q.After)
	if err == nil && len(out) == 0 && (q.Page > 1 || q.After > 0) {
		err = t.withBitmapScans(ctx, func(br pgx.BatchResults) error {
			return br.QueryRow().Scan(&total)
		}, searchCountSQL, query, status)
	}
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	return out, int(total), nil
}

// withBitmapScans runs one statement with bitmap scans allowed, in one
// round trip: read reads its results.
func (t *txn) withBitmapScans(ctx context.Context, read func(pgx.BatchResults) error, sql string, args ...any) error {
	b := &pgx.Batch{}
	b.Queue(bitmapOnSQL)
	b.Queue(sql, args...)
	b.Queue(bitmapOffSQL)
	br := t.tx.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		err = read(br)
	}
	if err == nil {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	t.noteErr(err)
	return err
}
