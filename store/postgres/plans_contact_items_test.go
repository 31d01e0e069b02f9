package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPlans_ContactItems: a contact's items (ContactItems, which the
// engine's OptOut and DNC checks use, and the pools a write transaction
// locks first) are one seek per pool in UNIQUE (pool_id, contact_uuid),
// as on SQLite, not a walk of that whole index with contact_uuid, its
// second column, as the condition: PostgreSQL 15 has no skip scan, and
// there is no index on contacts alone (see 0004). Here 40 pools of 1,500
// items each, the contact in 3 of them; with statistics and without.
//
// The walk read every index entry of every pool (546 buffers for
// TestPlans_Analyzed's 60,000 items, growing with the items of the
// store); the seeks read a few pages per pool.
func TestPlans_ContactItems(t *testing.T) {
	oneGoroutine(t)
	url := pgtest.URL(t)
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	contact := uuid.New()
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		for i := range 40 {
			p := newTestPool("contacts")
			if err := tx.InsertPool(ctx, p); err != nil {
				return err
			}
			items := pendingItems(1500)
			if i%15 == 7 {
				items[i*10] = pool.Item{ContactUUID: contact, Status: pool.StatusPending, AddedAt: items[0].AddedAt}
			}
			if _, err := tx.InsertItems(ctx, p.UUID, items); err != nil {
				return err
			}
		}
		return nil
	}))
	check := func(when string) {
		for _, s := range postgres.ContactStatements {
			args := []string{"'" + contact.String() + "'"}
			if strings.Count(s.SQL, "$2") > 0 {
				args = append(args, "'{1,2,3}'")
			}
			plan, err := postgres.Plan(ctx, st, s.SQL, args...)
			require.NoError(t, err)
			require.Regexp(t, `Index (Only )?Scan using items_pool_id_contact_uuid_key on items`, plan, "%s, %s:\n%s", s.Name, when, plan)
			require.Regexp(t, `Index Cond: \(\(pool_id = `, plan, "%s, %s: a seek per pool:\n%s", s.Name, when, plan)
			require.NotContains(t, plan, "Index Cond: (contact_uuid = $1)", "%s, %s: a walk of every pool's items:\n%s", s.Name, when, plan)
			require.NotRegexp(t, `Seq Scan|Bitmap|(^|-> +)Sort\b|Hash Join|Merge Join`, plan, "%s, %s:\n%s", s.Name, when, plan)
		}
		var got []uuid.UUID
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			items, err := tx.ContactItems(ctx, contact)
			for _, it := range items {
				got = append(got, it.ContactUUID)
			}
			return err
		}))
		require.Equal(t, []uuid.UUID{contact, contact, contact}, got, when)
	}
	check("not analyzed")

	conn := postgres.SchemaConn(t, url, st.Schema())
	_, err := conn.Exec(ctx, "ANALYZE items, pools")
	require.NoError(t, err)
	check("analyzed")
}
