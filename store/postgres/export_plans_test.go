package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store"
)

// Statement is a statement a method sent, with its arguments as SQL
// literals (for Plan).
type Statement struct {
	SQL  string
	Args []string
}

// CampaignsStatements returns the statements Campaigns(q) sends (q
// normalized), recorded in a read transaction of st.
func CampaignsStatements(ctx context.Context, st *Store, q campaign.Query) ([]Statement, error) {
	rec := &recorder{}
	err := st.Read(ctx, func(tx store.Tx) error {
		t := tx.(*txn)
		rec.querier = t.tx
		t.tx = rec
		_, _, err := t.Campaigns(ctx, q)
		return err
	})
	return rec.stmts, err
}

// recorder is a querier that records the queries it runs.
type recorder struct {
	querier
	stmts []Statement
}

func (r *recorder) note(sql string, args []any) {
	s := Statement{SQL: sql}
	for _, a := range args {
		switch v := a.(type) {
		case int, int32, int64:
			s.Args = append(s.Args, fmt.Sprint(v))
		case uuid.UUID:
			s.Args = append(s.Args, "'"+v.String()+"'")
		default:
			s.Args = append(s.Args, "'"+strings.ReplaceAll(fmt.Sprint(v), "'", "''")+"'")
		}
	}
	r.stmts = append(r.stmts, s)
}

func (r *recorder) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r.note(sql, args)
	return r.querier.Query(ctx, sql, args...)
}

func (r *recorder) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	r.note(sql, args)
	return r.querier.QueryRow(ctx, sql, args...)
}

func (r *recorder) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	r.note(sql, args)
	return r.querier.Exec(ctx, sql, args...)
}
