package migrations_test

import (
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
