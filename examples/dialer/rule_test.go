package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/examples/internal/opendb"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestRun_SummaryCeilingIsTheRules: on a database whose rule "Two calls a
// contact" allows three calls (an older demo's, or edited through the
// HTTP API), the summary's "the rule's max_total_calls" is the rule's, as
// the campaign line and the database say, not a constant of the program.
func TestRun_SummaryCeilingIsTheRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "dialer.db")

	st, err := opendb.Open(ctx, db)
	require.NoError(t, err)
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	three := 3
	_, err = eng.CreateRule(ctx, campaign.CreateRuleParams{
		Name: ruleName, MaxTotalCalls: &three, StartTime: new("00:00"), EndTime: new("23:59"),
	})
	require.NoError(t, err)
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())

	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"-db", db, "-contacts", "30", "-workers", "4", "-seed", "3"}, &out, &out))

	st, err = opendb.Open(ctx, db)
	require.NoError(t, err)
	defer st.Close()
	eng, err = queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer eng.Close()
	r, err := findRule(ctx, eng, ruleName)
	require.NoError(t, err)
	require.NotNil(t, r)

	head := regexp.MustCompile(`at most (\d+) calls per contact`).FindStringSubmatch(out.String())
	require.NotNil(t, head, "output: %s", out.String())
	sum := regexp.MustCompile(`most calls to one contact: (\d+) \(the rule's max_total_calls: (\d+)\)`).FindStringSubmatch(out.String())
	require.NotNil(t, sum, "output: %s", out.String())
	require.Equal(t, strconv.Itoa(r.MaxTotalCalls), head[1], "campaign line: output: %s", out.String())
	require.Equal(t, strconv.Itoa(r.MaxTotalCalls), sum[2], "summary line: output: %s", out.String())
	most, _ := strconv.Atoi(sum[1])
	require.LessOrEqual(t, most, r.MaxTotalCalls)
}
