package postgres_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestWatch_AfterClose: after Close, Watch registers nothing: no
// listener starts, and the function is never called (a listener that
// began to listen would call it with uuid.Nil at once).
func TestWatch_AfterClose(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	st := pgtest.Open(t, url, postgres.Options{})
	require.NoError(t, st.Close())
	called := make(chan struct{}, 1)
	stop := st.Watch(func(uuid.UUID) {
		select {
		case called <- struct{}{}:
		default:
		}
	})
	defer stop()
	select {
	case <-called:
		t.Fatal("a function registered after Close was called")
	case <-time.After(time.Second):
	}
}
