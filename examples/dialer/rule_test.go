package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/examples/internal/opendb"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
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

// readFailStore fails every Read while failing is set.
type readFailStore struct {
	store.Store
	failing atomic.Bool
}

func (s *readFailStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	if s.failing.Load() {
		return errors.New("the database is unreachable")
	}
	return s.Store.Read(ctx, fn)
}

// TestEscalationWatch_AfterAFailedRead: the demo's escalation watch goes on
// after a failed read (WatchEscalations returns at one), from the last
// escalation it saw: one recorded after the failure is counted, once.
func TestEscalationWatch_AfterAFailedRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	rs := &readFailStore{Store: st}
	eng, err := queue.New(rs, queue.Options{PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	defer eng.Close()
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "escalate", StartTime: new("00:00"), EndTime: new("23:59"),
		EscalationAfterFailedAttempts: new(1)})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: pools[0].name, Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "escalations", RuleUUID: &r.UUID})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)
	escalate := func() {
		l, err := eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, eng.Fail(ctx, l, queue.Failure{Note: "busy"}))
	}
	escalate() // before the watch: not counted

	w, err := watchEscalations(ctx, eng, []uuid.UUID{p.UUID})
	require.NoError(t, err)
	rs.failing.Store(true)
	time.Sleep(200 * time.Millisecond) // its polls fail: WatchEscalations returns
	rs.failing.Store(false)
	escalate()
	time.Sleep(1500 * time.Millisecond) // the watch starts again a second after its failure
	require.NoError(t, w.close(), "a failed read does not end the watch")
	require.Equal(t, 1, w.count, "the escalation recorded after the failure, once")
}
