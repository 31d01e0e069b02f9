package postgres_test

import (
	"testing"

	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/storetest"
)

// TestStore runs the conformance suite, each subtest on a store in a schema
// of its own, with each way of locking a pool.
func TestStore(t *testing.T) {
	url := pgtest.URL(t)
	for _, l := range []postgres.Locking{postgres.AdvisoryLock, postgres.RowLock} {
		t.Run(l.String(), func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) store.Store {
				return pgtest.Open(t, url, postgres.Options{Locking: l})
			})
		})
	}
}
