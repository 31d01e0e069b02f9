package migrations_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/poolq/poolq/store/internal/migrations"
	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		ms, err := migrations.Load(fstest.MapFS{
			"m/0002_more.sql": file("B"),
			"m/0001_init.sql": file("A"),
			"m/README.md":     file("not a migration"),
		}, "m")
		require.NoError(t, err)
		require.Equal(t, []migrations.Migration{{Version: 1, Name: "0001_init.sql", SQL: "A"}, {Version: 2, Name: "0002_more.sql", SQL: "B"}}, ms)
	})

	for name, fsys := range map[string]fstest.MapFS{
		"Gap":       {"m/0001_a.sql": file(""), "m/0003_c.sql": file("")},
		"Repeat":    {"m/0001_a.sql": file(""), "m/001_b.sql": file("")},
		"NotOne":    {"m/0002_b.sql": file("")},
		"NoNumber":  {"m/init.sql": file("")},
		"BadNumber": {"m/00x1_a.sql": file("")},
		"Empty":     {"m/README.md": file("")},
		"NoDir":     {"other/0001_a.sql": file("")},
	} {
		t.Run("Err"+name, func(t *testing.T) {
			t.Parallel()
			_, err := migrations.Load(fsys, "m")
			require.Error(t, err)
		})
	}
}

// TestUnlanded: a landed file edited, one gone and one new are each named;
// the files as they landed are not.
func TestUnlanded(t *testing.T) {
	t.Parallel()
	history := []migrations.Migration{{Version: 1, Name: "0001_a.sql", SQL: "CREATE TABLE a (x);"}, {Version: 2, Name: "0002_b.sql", SQL: "CREATE TABLE b (x);"}}
	landed := map[string]string{
		"0001_a.sql": "b6e9e1b3c1fd4a1b0a8a1b2a0e5f0c8a6e7de2f33a44ad0e5ee6b4ce1b78a6b7", // not its hash: edited
		"0002_b.sql": sha("CREATE TABLE b (x);"),
		"0003_c.sql": sha("CREATE TABLE c (x);"),
	}
	got := migrations.Unlanded(history, landed)
	require.Len(t, got, 2)
	require.Contains(t, got[0], "0001_a.sql has changed since it landed")
	require.Contains(t, got[0], "0003_name.sql")
	require.Contains(t, got[1], "0003_c.sql has landed and is gone")

	delete(landed, "0003_c.sql")
	landed["0001_a.sql"] = sha("CREATE TABLE a (x);")
	require.Empty(t, migrations.Unlanded(history, landed))
	got = migrations.Unlanded(append(history, migrations.Migration{Version: 3, Name: "0003_d.sql", SQL: "CREATE TABLE d (x);"}), landed)
	require.Equal(t, []string{fmt.Sprintf("migrations/0003_d.sql is new: once it is final, pin it\n\t%q: %q,", "0003_d.sql", sha("CREATE TABLE d (x);"))}, got)
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
