package sqlite

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		ms, err := loadMigrations(fstest.MapFS{
			"m/0002_more.sql": file("B"),
			"m/0001_init.sql": file("A"),
			"m/README.md":     file("not a migration"),
		}, "m")
		require.NoError(t, err)
		require.Equal(t, []migration{{1, "0001_init.sql", "A"}, {2, "0002_more.sql", "B"}}, ms)
	})

	for name, fsys := range map[string]fstest.MapFS{
		"Gap":       {"m/0001_a.sql": file(""), "m/0003_c.sql": file("")},
		"Repeat":    {"m/0001_a.sql": file(""), "m/001_b.sql": file("")},
		"NotOne":    {"m/0002_b.sql": file("")},
		"NoNumber":  {"m/init.sql": file("")},
		"BadNumber": {"m/00x1_a.sql": file("")},
		"Empty":     {"m/README.md": file("")},
	} {
		t.Run("Err"+name, func(t *testing.T) {
			t.Parallel()
			_, err := loadMigrations(fsys, "m")
			require.Error(t, err)
		})
	}

	require.NoError(t, migrationsErr, "the embedded migrations load")
	require.Equal(t, "0001_init.sql", migrations[0].name)
}

func TestFoldCase(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]string{
		{"ÉCOLE", "école"},
		{"VIP Customers", "vip customers"},
		{"ΣΊΣΥΦΟΣ", "σίσυφος"}, // final sigma folds with the others
		{"KELVIN \u212a", "kelvin k"},
		{"Straße", "STRAßE"}, // simple folding: ß stays one rune
	} {
		require.Equal(t, foldCase(pair[0]), foldCase(pair[1]), "%q vs %q", pair[0], pair[1])
		require.True(t, strings.EqualFold(pair[0], pair[1]))
	}
	require.NotEqual(t, foldCase("ecole"), foldCase("école"), "accents are kept")
	require.NotEqual(t, foldCase("strasse"), foldCase("straße"))
}

func TestEscapePath(t *testing.T) {
	t.Parallel()
	require.Equal(t, "/tmp/a b/c.db", escapePath("/tmp/a b/c.db"))
	require.Equal(t, "/tmp/a%3Fb%23c%25d.db", escapePath("/tmp/a?b#c%d.db"))
}
