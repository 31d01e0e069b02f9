package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/poolq/poolq/store"
	"modernc.org/sqlite"
)

// The search of item listings (store.Tx.Items with q.Search).
//
// item_search (migrations 0004, 0009 and 0013) is a contentless FTS5
// table whose rowid is an item's id and whose text is the item's terms:
// the words of its contact's name, email and phone number as
// store.SearchWords cuts and folds them, each after its pool's id
// (pools.id) and a slash ("42/lovelace"), joined by spaces. Its tokenizer,
// 'ascii' with the slash a token character, only splits that text at the
// spaces: every character that is not ASCII is a token character, the
// ASCII characters of a term are the pool's digits, the slash, and the
// word's letters and digits, and its case folding of ASCII letters changes
// nothing in text already folded. So the index holds exactly
// store.SearchWords's words, as the PostgreSQL store does, and never
// SQLite's own idea of a word (unicode61 cuts and folds with its own,
// older, Unicode tables).
//
// The pool's id keeps each pool's terms apart in the index, as the
// PostgreSQL store's lexemes do: a search asks for its pool's terms only
// (ftsQuery), so it reads the index entries of its pool and not those of
// the other pools, whatever they hold. No word holds a slash, and an id
// is digits: "42/…" is never the term of another pool. An item never
// changes pool (a duplicate is a new item of its new pool), so its terms
// stay right for as long as it lives.
//
// The terms are computed in Go inside SQL, by the function
// poolq_search_terms, which the Store's connections have (see drv): the
// INSERT … SELECT that indexes the items just inserted, and migration
// 0013 that indexes the existing ones, stay single statements.
// poolq_search_words, the words without a pool, is what migration 0009
// indexed (0013 indexes everything again after it).

// searchWordsFunc is the name of the SQL function
// poolq_search_words(field, …): the words of its arguments (NULLs skipped)
// as store.SearchWords returns them, joined by spaces; "" when there are
// none. Migration 0009 calls it.
const searchWordsFunc = "poolq_search_words"

// searchTermsFunc is the name of the SQL function
// poolq_search_terms(pool_id, field, …): the terms of an item of pool
// pool_id in item_search, its words as poolq_search_words returns them,
// each after searchPrefix(pool_id); "" when there are none.
const searchTermsFunc = "poolq_search_terms"

// drv is the driver of the Store's connections: modernc's, with
// poolq_search_words and poolq_search_terms registered on it alone, not on
// the process-wide "sqlite" driver that the host program may use too.
//
// Their arguments are volatile (read in SQLite's memory, not copied for
// each call): joinSearchWords and joinSearchTerms keep nothing of them and
// run no SQL.
var drv = func() *sqlite.Driver {
	d := &sqlite.Driver{}
	for name, fn := range map[string]func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error){
		searchWordsFunc: joinSearchWords,
		searchTermsFunc: joinSearchTerms,
	} {
		err := d.RegisterFunction(name, &sqlite.FunctionImpl{
			NArgs: -1, Deterministic: true, Scalar: fn, VolatileArgs: true,
		})
		if err != nil {
			panic(fmt.Sprintf("sqlite: register %s: %v", name, err))
		}
	}
	return d
}()

// connector opens connections to dsn with drv.
type connector struct{ dsn string }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return drv.Open(c.dsn)
}

func (c connector) Driver() driver.Driver { return drv }

// openDB returns a database of connections to dsn that have
// poolq_search_words and poolq_search_terms. As sql.Open, it opens no
// connection.
func openDB(dsn string) *sql.DB { return sql.OpenDB(connector{dsn}) }

// joinSearchWords is the Go side of poolq_search_words.
func joinSearchWords(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	text, err := appendFieldWords(nil, searchWordsFunc, args)
	if err != nil {
		return nil, err
	}
	return string(text), nil
}

// joinSearchTerms is the Go side of poolq_search_terms.
func joinSearchTerms(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: no pool id", searchTermsFunc)
	}
	k, ok := args[0].(int64)
	if !ok {
		return nil, fmt.Errorf("%s: pool id of type %T, want integer", searchTermsFunc, args[0])
	}
	words, err := appendFieldWords(nil, searchTermsFunc, args[1:])
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return "", nil
	}
	prefix := searchPrefix(k)
	text := make([]byte, 0, len(words)+(bytes.Count(words, []byte{' '})+1)*len(prefix))
	for w := range bytes.SplitSeq(words, []byte{' '}) {
		if len(text) > 0 {
			text = append(text, ' ')
		}
		text = append(append(text, prefix...), w...)
	}
	return string(text), nil
}

// appendFieldWords appends the words of fields (NULLs skipped), as
// store.AppendSearchText does, to dst; fn names the SQL function in an
// error.
func appendFieldWords(dst []byte, fn string, fields []driver.Value) ([]byte, error) {
	n := 0
	for _, a := range fields {
		if v, ok := a.(string); ok {
			n += len(v) + 1
		}
	}
	dst = slices.Grow(dst, n)
	for _, a := range fields {
		switch v := a.(type) {
		case nil:
		case string:
			dst = store.AppendSearchText(dst, v)
		case []byte:
			dst = store.AppendSearchText(dst, string(v))
		default:
			return nil, fmt.Errorf("%s: argument of type %T, want text", fn, a)
		}
	}
	return dst, nil
}

// searchPrefix returns what comes before each word in the terms of pool k
// in item_search: its id and a slash.
func searchPrefix(k int64) string { return strconv.FormatInt(k, 10) + "/" }

// ftsQuery turns a search in pool k into an FTS5 query of the pool's
// terms: its words all required, the last as a prefix (store.SearchQuery):
// "ada@Exam" in pool 42 → "42/ada" AND "42/exam"*. "" when the search has
// no word.
func ftsQuery(k int64, search string) string {
	words, last := store.SearchQuery(search)
	prefix := searchPrefix(k)
	terms := make([]string, 0, len(words)+1)
	for _, w := range words {
		terms = append(terms, `"`+prefix+w+`"`) // a term holds no quote: no escaping
	}
	if last != "" {
		terms = append(terms, `"`+prefix+last+`"*`)
	}
	return strings.Join(terms, " AND ")
}
