package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store"
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
