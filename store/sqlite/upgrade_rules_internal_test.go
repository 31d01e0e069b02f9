package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestMigrate_RulesSurviveEveryVersion makes a file at every earlier
// version that has calling rules (6 … latest-1) with a rule (every field
// set), a paused campaign under it holding a pool with an item, a contact
// on the do-not-call list and an escalation, opens it with today's code
// and reads them back through the engine, field by field; the paused
// campaign still holds its pool.
//
// Not parallel: it narrows the package's migrations.
func TestMigrate_RulesSurviveEveryVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("no concurrency; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	for k := 6; k < latestVersion(); k++ {
		t.Run(fmt.Sprintf("v%d", k), func(t *testing.T) { upgradeRules(t, k) })
	}
}

func upgradeRules(t *testing.T, version int) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db := openDB(path) // 0009 needs poolq_search_words
	db.SetMaxOpenConns(1)
	all := history
	history = all[:version]
	err := migrate(ctx, db)
	history = all
	require.NoError(t, err)
	exec := func(q string, args ...any) {
		t.Helper()
		_, err := db.ExecContext(ctx, q, args...)
		require.NoError(t, err, q)
	}
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)
	p, r, k, contact, dnc, opted := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	exec(insertOldPool, p[:])
	exec(`INSERT INTO rules (uuid, name, type, max_calls_per_day, max_total_calls, retry_interval_minutes, start_time,
    end_time, dnc_check, remove_on_opt_out, escalation_after, escalation_type, escalation_target, created_at, updated_at, search)
    VALUES (?, 'Old Rule', 'call', 3, 9, 45, 540, 1020, 1, 1, 4, 'email', 'ops@example.com', ?, ?, 'old rule')`,
		r[:], t0.UnixNano(), t0.Add(time.Minute).UnixNano())
	exec(`INSERT INTO campaigns (uuid, name, status, rule_id, timezone, created_at, updated_at, search)
    VALUES (?, 'Old Campaign', 'Paused', 1, 'America/Chicago', ?, ?, 'old campaign')`, k[:], t0.UnixNano(), t0.Add(time.Hour).UnixNano())
	exec(`INSERT INTO campaign_pools (campaign_id, pool_id, seq) VALUES (1, 1, 1)`)
	exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, notes, added_at, token, ready)
    VALUES (1, ?, 'Pending', 0, 0, 0, '', 1, 0, 1)`, contact[:])
	exec(`UPDATE pool_counts SET n = 1 WHERE pool_id = 1 AND status = 'Pending'`)
	exec(`INSERT INTO dnc (contact_uuid, added_at) VALUES (?, ?)`, dnc[:], t0.UnixNano())
	exec(`INSERT INTO opt_outs (contact_uuid, opted_out_at) VALUES (?, ?)`, opted[:], t0.UnixNano())
	exec(`INSERT INTO escalations (item_id, pool_uuid, contact_uuid, campaign_uuid, rule_uuid, type, target,
    failed_attempts, escalated_at) VALUES (77, ?, ?, ?, ?, 'email', 'ops@example.com', 4, ?)`,
		p[:], contact[:], k[:], r[:], t0.UnixNano())
	require.NoError(t, db.Close())

	st, err := Open(ctx, path, Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	e, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer e.Close()

	rule, err := e.Rule(ctx, r)
	require.NoError(t, err)
	ri, ea, et, eg := 45, 4, "email", "ops@example.com"
	end := campaign.Clock(1020)
	require.Equal(t, campaign.Rule{UUID: r, Name: "Old Rule", Type: campaign.Call, MaxCallsPerDay: 3, MaxTotalCalls: 9,
		RetryIntervalMinutes: &ri, StartTime: 540, EndTime: &end, DNCCheck: true, RemoveOnOptOut: true,
		EscalationAfterFailedAttempts: &ea, EscalationType: &et, EscalationTarget: &eg,
		CreatedAt: t0, UpdatedAt: t0.Add(time.Minute)}, rule)

	c, err := e.Campaign(ctx, k)
	require.NoError(t, err)
	require.Equal(t, campaign.Campaign{UUID: k, Name: "Old Campaign", Status: campaign.Paused, RuleUUID: &r,
		TimeZone: "America/Chicago", PoolUUIDs: []uuid.UUID{p}, CreatedAt: t0, UpdatedAt: t0.Add(time.Hour)}, c)

	for id, want := range map[uuid.UUID]bool{dnc: true, contact: false, opted: false} {
		got, err := e.IsDNC(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	esc, err := e.Escalations(ctx, campaign.EscalationQuery{})
	require.NoError(t, err)
	require.Len(t, esc, 1)
	require.Equal(t, campaign.Escalation{ID: 1, PoolUUID: p, ContactUUID: contact, ItemID: 77, CampaignUUID: k, RuleUUID: r,
		Type: "email", Target: "ops@example.com", FailedAttempts: 4, At: t0}, esc[0])

	_, err = e.TryDequeue(ctx, p)
	require.ErrorIs(t, err, queue.ErrHeld, "the paused campaign holds its pool")
}
