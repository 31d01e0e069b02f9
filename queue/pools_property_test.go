package queue_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// dumpDB returns every row of every table of the SQLite file at path, read
// through a connection of its own, as sorted text: two dumps are equal
// exactly when the database holds the same rows.
func dumpDB(t require.TestingT, db *sql.DB) string {
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Close())
	var b strings.Builder
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		require.NoError(t, err)
		cols, err := rows.Columns()
		require.NoError(t, err)
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			lines = append(lines, fmt.Sprintf("%q", vals))
		}
		require.NoError(t, rows.Close())
		slices.Sort(lines)
		fmt.Fprintf(&b, "%s %d\n%s\n", table, len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

var (
	propRune = rapid.OneOf(
		rapid.RuneFrom([]rune("abcxyzABCXYZ0129 -_.()")),
		rapid.RuneFrom(nil, unicode.Han, unicode.Cyrillic, unicode.Arabic),
		rapid.RuneFrom([]rune("🚀😀é")),
	)
	propName = rapid.StringOfN(propRune, pool.MinNameLen, pool.MaxNameLen, -1).
			Filter(func(s string) bool { // valid once trimmed, as the name rule counts it
			n := utf8.RuneCountInString(strings.TrimSpace(s))
			return n >= pool.MinNameLen && n <= pool.MaxNameLen
		})
	propDesc = rapid.StringOfN(propRune, 1, 60, -1).
			Filter(func(s string) bool { return strings.TrimSpace(s) != "" })
	propValidCreate = rapid.Custom(func(t *rapid.T) pool.CreateParams {
		return pool.CreateParams{
			Name:             propName.Draw(t, "name"),
			Description:      propDesc.Draw(t, "description"),
			Type:             rapid.SampledFrom([]pool.Type{"", "FIFO", "lifo", "PARALLEL", "Parallel"}).Draw(t, "type"),
			MaxParallelItems: rapid.Ptr(rapid.IntRange(1, 100), true).Draw(t, "max_parallel_items"),
			MaxRetries:       rapid.Ptr(rapid.IntRange(0, 1<<min(40, strconv.IntSize-2)), true).Draw(t, "max_retries"),
			IsActive:         rapid.Ptr(rapid.Bool(), true).Draw(t, "is_active"),
		}
	})
)

// breakParams makes the fields named in bad invalid in c (a create) and u (an
// update of the same fields).
func breakParams(t *rapid.T, c *pool.CreateParams, u *pool.UpdateParams, bad []string) {
	for _, f := range bad {
		switch f {
		case "name":
			v := rapid.SampledFrom([]string{"", "   ", "ab", "日本", strings.Repeat("x", 256), "a\xffb"}).Draw(t, "bad name")
			c.Name, u.Name = v, &v
		case "description":
			v := rapid.SampledFrom([]string{"", " ", "\t\n"}).Draw(t, "bad description")
			c.Description, u.Description = v, &v
		case "type":
			v := pool.Type(rapid.SampledFrom([]string{"Random", "FIFO ", "fifo2", "Paralel"}).Draw(t, "bad type"))
			c.Type, u.Type = v, &v
		case "max_parallel_items":
			v := rapid.OneOf(rapid.IntMax(0), rapid.IntMin(101)).Draw(t, "bad max_parallel_items")
			c.MaxParallelItems, u.MaxParallelItems = &v, &v
		case "max_retries":
			v := rapid.IntMax(-1).Draw(t, "bad max_retries")
			c.MaxRetries, u.MaxRetries = &v, &v
		}
	}
}

// TestEngine_PoolProperties checks, over generated input, that a valid
// CreateParams round-trips through the store unchanged, and that invalid
// creates, updates and adds are rejected naming exactly the bad fields and
// leave every row of the database as it was.
func TestEngine_PoolProperties(t *testing.T) {
	oneGoroutine(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "prop.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	c := newClock()
	eng, err := queue.New(st, queue.Options{Now: c.Now})
	require.NoError(t, err)
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	defer raw.Close()

	// A pool with items, so that the dumps have rows in every table.
	seed, err := eng.CreatePool(ctx, pool.CreateParams{Name: "seed pool", Description: "rows"})
	require.NoError(t, err)
	_, err = eng.Add(ctx, seed.UUID, pool.NewItem{ContactUUID: uuid.New(), Payload: []byte(`{"a":1}`)})
	require.NoError(t, err)

	rapid.Check(t, func(t *rapid.T) {
		params := propValidCreate.Draw(t, "params")
		empty := dumpDB(t, raw)
		p, err := eng.CreatePool(ctx, params)
		require.NoError(t, err)
		require.NotEqual(t, empty, dumpDB(t, raw), "the dump sees a new pool")
		want, err := pool.New(p.UUID, params, c.Now())
		require.NoError(t, err)
		require.Equal(t, want, p)
		d, err := eng.Pool(ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, want, d.Pool, "round trip through the store")
		c.Advance(1)

		all := []string{"name", "description", "type", "max_parallel_items", "max_retries"}
		bad := rapid.SliceOfNDistinct(rapid.SampledFrom(all), 1, len(all), rapid.ID[string]).Draw(t, "bad fields")
		var u pool.UpdateParams
		breakParams(t, &params, &u, bad)

		before := dumpDB(t, raw)
		_, err = eng.CreatePool(ctx, params)
		require.ElementsMatch(t, bad, fieldsOf(t, err), "create")
		_, err = eng.UpdatePool(ctx, p.UUID, u)
		require.ElementsMatch(t, bad, fieldsOf(t, err), "update")
		_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}, pool.NewItem{ContactUUID: uuid.Nil})
		require.Equal(t, []string{"items[1].contact_uuid"}, fieldsOf(t, err), "add")
		require.Equal(t, before, dumpDB(t, raw), "a rejected call changed the database")
	})
}
