package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/poolq/poolq/store"
	"modernc.org/sqlite"
)

// The search of item listings (store.Tx.Items with q.Search).
//
// item_search (migrations 0004 and 0009) is a contentless FTS5 table
// whose rowid is an item's id and whose text is the item's words as
// store.SearchWords cuts and folds them, joined by spaces: the words of
// its contact's name, email and phone number. Its tokenizer, 'ascii',
// only splits that text at the spaces: every character that is not ASCII
// is a token character, the ASCII characters of a word are letters and
// digits, and its case folding of ASCII letters changes nothing in text
// already folded. So the index holds exactly store.SearchWords's words,
// as the PostgreSQL store does, and never SQLite's own idea of a word
// (unicode61 cuts and folds with its own, older, Unicode tables).
//
// The words are computed in Go inside SQL, by the function
// poolq_search_words, which the Store's connections have (see drv): the
// INSERT … SELECT that indexes the items just inserted, and migration
// 0009 that indexes the existing ones, stay single statements.

// searchWordsFunc is the name of the SQL function
// poolq_search_words(field, …): the words of its arguments (NULLs skipped)
// as store.SearchWords returns them, joined by spaces; "" when there are
// none.
const searchWordsFunc = "poolq_search_words"

// drv is the driver of the Store's connections: modernc's, with
// poolq_search_words registered on it alone, not on the process-wide
// "sqlite" driver that the host program may use too.
//
// Its arguments are volatile (read in SQLite's memory, not copied for each
// call): joinSearchWords keeps nothing of them and runs no SQL.
var drv = func() *sqlite.Driver {
	d := &sqlite.Driver{}
	err := d.RegisterFunction(searchWordsFunc, &sqlite.FunctionImpl{
		NArgs: -1, Deterministic: true, Scalar: joinSearchWords, VolatileArgs: true,
	})
	if err != nil {
		panic(fmt.Sprintf("sqlite: register %s: %v", searchWordsFunc, err))
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
// poolq_search_words. As sql.Open, it opens no connection.
func openDB(dsn string) *sql.DB { return sql.OpenDB(connector{dsn}) }

// joinSearchWords is the Go side of poolq_search_words.
func joinSearchWords(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	n := 0
	for _, a := range args {
		if v, ok := a.(string); ok {
			n += len(v) + 1
		}
	}
	text := make([]byte, 0, n)
	for _, a := range args {
		switch v := a.(type) {
		case nil:
		case string:
			text = store.AppendSearchText(text, v)
		case []byte:
			text = store.AppendSearchText(text, string(v))
		default:
			return nil, fmt.Errorf("%s: argument of type %T, want text", searchWordsFunc, a)
		}
	}
	return string(text), nil
}

// ftsQuery turns a search into an FTS5 query: its words (store.SearchWords)
// all required, the last as a prefix: "ada@Exam" → "ada" AND "exam"*. ""
// when the search has no word.
func ftsQuery(search string) string {
	words := store.SearchWords(search)
	if len(words) == 0 {
		return ""
	}
	for i, w := range words {
		words[i] = `"` + w + `"` // a word holds no quote: no escaping
	}
	return strings.Join(words, " AND ") + "*"
}
