package main

import (
	"context"
	"os"
	"testing"

	"github.com/poolq/poolq/store/postgres"
	"github.com/stretchr/testify/require"
)

// TestRiverPG_sameConnectionsAsPoolq checks that River on PostgreSQL gets
// as many connections as poolq-pg's store (postgres.DefaultMaxConns, when
// the URL names no pool_max_conns), not pgx's default, which depends on the
// machine's CPUs (4 on the 2-core machine of bench/RESULTS.md, half of
// poolq's 8).
func TestRiverPG_sameConnectionsAsPoolq(t *testing.T) {
	url := os.Getenv("POOLQ_TEST_POSTGRES")
	if url == "" {
		t.Skip("needs POOLQ_TEST_POSTGRES")
	}
	defer func(old string) { pgURL = old }(pgURL)
	pgURL = url
	s, err := openRiverPG(context.Background(), "", 16)
	require.NoError(t, err)
	defer s.Close()
	require.EqualValues(t, postgres.DefaultMaxConns, s.(*riverPGSystem).db.Config().MaxConns,
		"River-pg's pgxpool size, against poolq-pg's store")
}
