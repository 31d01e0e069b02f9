package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// fkRaceStore is a store whose DeleteRule fails as store/postgres's does
// when another transaction (another API server on the database) gave the
// rule to a campaign after the engine found it unused: campaign.ErrConflict
// wrapping the driver's foreign-key violation.
type fkRaceStore struct{ store.Store }

func (s fkRaceStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Write(ctx, func(tx store.Tx) error { return fn(fkRaceTx{tx}) })
}

type fkRaceTx struct{ store.Tx }

func (t fkRaceTx) DeleteRule(ctx context.Context, id uuid.UUID) error {
	pe := &pgconn.PgError{Severity: "ERROR", Code: "23503", SchemaName: "poolq_prod", TableName: "campaigns",
		ConstraintName: "campaigns_rule_id_fkey",
		Message:        `update or delete on table "rules" violates foreign key constraint "campaigns_rule_id_fkey" on table "campaigns"`}
	return fmt.Errorf("postgres: delete rule %s: a campaign uses it: %w (%w)", id, campaign.ErrConflict, pe)
}

// TestDeleteRule_ConflictDetailsHideTheDatabase: a 409 CONFLICT's details
// say what conflicts, never the database's own error (its tables,
// constraints, SQLSTATE), which is for the log.
func TestDeleteRule_ConflictDetailsHideTheDatabase(t *testing.T) {
	t.Parallel()
	b := setupOver(t, func(s store.Store) store.Store { return fkRaceStore{s} })
	r := b.createRule(map[string]any{"name": "Raced rule"})
	res := b.do("DELETE", "/api/v1/rules/"+r.UUID.String(), nil)
	requireError(t, res, http.StatusConflict, CodeConflict)
	for _, internal := range []string{"SQLSTATE", "23503", "constraint", "campaigns_rule_id_fkey", "postgres", "table"} {
		require.NotContains(t, res.Env.Error.Details, internal, "body: %s", res.Body)
	}
}

// hookStore runs hook (once) before the store's own DeleteRule.
type hookStore struct {
	store.Store
	hook func()
}

func (s *hookStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Write(ctx, func(tx store.Tx) error { return fn(hookTx{tx, s}) })
}

type hookTx struct {
	store.Tx
	s *hookStore
}

func (t hookTx) DeleteRule(ctx context.Context, id uuid.UUID) error {
	if h := t.s.hook; h != nil {
		t.s.hook = nil
		h()
	}
	return t.Tx.DeleteRule(ctx, id)
}

// TestDeleteRule_ConflictDetailsHideTheDatabase_Postgres is the race
// itself, on PostgreSQL: two API servers on one schema; while the first
// deletes a rule it found unused, the second assigns it to a campaign and
// commits. The delete then fails on the foreign key, a 409 CONFLICT whose
// details must not be the database's error.
func TestDeleteRule_ConflictDetailsHideTheDatabase_Postgres(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := context.Background()
	stA := pgtest.Open(t, url, postgres.Options{})
	stB := pgtest.OpenSchema(t, url, postgres.Options{Schema: stA.Schema()})
	hs := &hookStore{Store: stA}
	engA, err := queue.New(hs, queue.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = engA.Close() })
	engB, err := queue.New(stB, queue.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = engB.Close() })

	r, err := engB.CreateRule(ctx, campaign.CreateRuleParams{Name: "Raced rule"})
	require.NoError(t, err)
	c, err := engB.CreateCampaign(ctx, campaign.CreateParams{Name: "Raced campaign"})
	require.NoError(t, err)
	hs.hook = func() {
		_, err := engB.AssignRule(ctx, c.UUID, r.UUID)
		require.NoError(t, err)
	}
	srv := newServer(engA, testToken, nil)
	req := httptest.NewRequest("DELETE", "/api/v1/rules/"+r.UUID.String(), nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	res := decodeResponse(t, rec.Code, rec.Header(), rec.Body.Bytes())
	requireError(t, res, http.StatusConflict, CodeConflict)
	for _, internal := range []string{"SQLSTATE", "23503", "constraint", "postgres", "table"} {
		require.NotContains(t, res.Env.Error.Details, internal, "body: %s", res.Body)
	}
}
