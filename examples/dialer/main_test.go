package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/poolq/poolq/examples/internal/opendb"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	t.Parallel()
	testRun(t, filepath.Join(t.TempDir(), "dialer.db"))
}

// TestRun_Postgres is TestRun on PostgreSQL (POOLQ_TEST_POSTGRES), in a
// schema of its own.
func TestRun_Postgres(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	testRun(t, url+sep+"schema="+pgtest.Schema(t, url))
}

// testRun runs the dialer twice on db: every contact ends, the rule's
// ceiling holds, the second run resumes.
func testRun(t *testing.T, db string) {
	ctx := context.Background()
	args := []string{"-db", db, "-contacts", "90", "-workers", "4", "-seed", "3"}

	var out bytes.Buffer
	require.NoError(t, run(ctx, args, &out))
	require.Regexp(t, `Renewals \(FIFO\)\s+FIFO\s+contacts added\s+30, already there\s+0`, out.String())
	require.Regexp(t, `\d+ calls in .*calls/s`, out.String())
	require.Contains(t, out.String(), `campaign "Dialer demo" is In Process, rule "Two calls a contact": at most 2 calls per contact`)
	most := regexp.MustCompile(`most calls to one contact: (\d)`).FindStringSubmatch(out.String())
	require.NotNil(t, most, "output: %s", out.String())
	require.Contains(t, []string{"1", "2"}, most[1], "the rule's ceiling (2) holds, not the pools' (3)")

	// Every contact ended in a terminal status, and the table says so.
	st, err := opendb.Open(ctx, db)
	require.NoError(t, err)
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	pg, err := eng.Pools(ctx, pool.PoolQuery{})
	require.NoError(t, err)
	require.Equal(t, 3, pg.Total)
	for _, p := range pg.Data {
		d, err := eng.Pool(ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, 30, d.ContactsCount)
		done := d.StatusCounts[pool.StatusCompleted] + d.StatusCounts[pool.StatusFailed]
		require.Equal(t, 30, done, "%s: %v", p.Name, d.StatusCounts)
		row := regexp.MustCompile(regexp.QuoteMeta(p.Name) + `\s+` + string(p.Type) + `\s+(\d+)\s+(\d+)`).FindStringSubmatch(out.String())
		require.NotNil(t, row, "summary row of %s", p.Name)
		require.Equal(t, strconv.Itoa(d.StatusCounts[pool.StatusCompleted]), row[1])
		require.Equal(t, strconv.Itoa(d.StatusCounts[pool.StatusFailed]), row[2])
	}
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())

	// A second run resumes: the same pools, no contact added twice.
	out.Reset()
	require.NoError(t, run(ctx, args, &out))
	require.Regexp(t, `Renewals \(FIFO\)\s+FIFO\s+contacts added\s+0, already there\s+30`, out.String())
	require.Regexp(t, `0 calls in`, out.String())
	require.Contains(t, out.String(), `campaign "Dialer demo" is In Process`)
}

func TestParse(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, err := parse([]string{"-contacts", "2"}, &out)
	require.ErrorContains(t, err, "-contacts")
	_, err = parse([]string{"-workers", "0"}, &out)
	require.ErrorContains(t, err, "-workers")
	_, err = parse([]string{"-nope"}, &out)
	require.Error(t, err)
	c, err := parse(nil, &out)
	require.NoError(t, err)
	require.Equal(t, "poolq-dialer.db", c.db)
	require.Equal(t, 3000, c.contacts)
}
