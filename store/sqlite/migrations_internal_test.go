package sqlite

import (
	"testing"

	"github.com/poolq/poolq/store/internal/migrations"
)

// landedMigrations pins the SHA-256 of every migration file that has
// landed (see migrations.Unlanded): an edit would reach new databases only
// and leave deployed ones with another schema than this code expects
// (0006 and 0008 were edited in place during development, before they were
// released). To change the schema, add the next numbered file
// (migrations/NNNN_name.sql) instead. A new file fails
// TestMigrations_Unchanged until its hash is added below; the failure
// prints the line to add.
var landedMigrations = map[string]string{
	"0001_init.sql":                "403aeb934286d6d2e344e2be5e2bf759d288fd85da1fd951290a2fdc9aa88257",
	"0002_counts_in_go.sql":        "fa3d16da577ad50df97fa8d14b4c72ea3a86e39fdc63112599223c61acf89efe",
	"0003_cheaper_constraints.sql": "611486915801a790b618038239663bc99fa3d5059a6d4196eb10f95561c4b4c3",
	"0004_item_contacts.sql":       "1c614507b6ffaaef53123821fad680e4a73cb25e567e6b82d28fdb45da4d3723",
	"0005_campaigns.sql":           "ed47f986a5f4e4c97a49b98bb8caeb9742a1e079a8455d05b3df13639b200a31",
	"0006_calling_rules.sql":       "8e623cb1e24ee55ca7117143d5c007a6ddc88c685660a90dcc834658781856db",
	"0007_call_at.sql":             "5f69a9ef00976388447871ba5b8853015fe5183a04727b23842f80d0dd95c358",
	"0008_kept_calls.sql":          "26564f4b9204cbe8b368f534fbd905056ae38f6154c25a7e275661284dba56cb",
	"0009_search_words.sql":        "97ad41c6868f8cb028c7d1ea01dfc784ebf1639f94f546948a3e87e81364810a",
	"0010_prev_call_day.sql":       "f91cec22f411377a51b8447f6b4ff27005ca114c5ee2c5068581fe7eb3456f2e",
	"0011_older_call_day.sql":      "408ad607c177b3e88882ec3eee30fca8869a95b2975250eca7dc393f20eb7209",
	"0012_governing_pools.sql":     "66e24c03accfa6fe842d835b4fa3334b395773bf10fb303ec533eabcedc7b60c",
	"0013_search_by_pool.sql":      "b590948271864c265364472dac1ab23cdb646467b4ae5aebef71ccc80ed077ff",
	"0014_finished_kept_calls.sql": "bb5022c20b44aceaf2290cb2a39846e6a10dfbefc603a833b286ff57d522330f",
	"0015_campaigns_by_status.sql": "380dcb68e60311d4123f2b6d25b78aa466b79179aaf5dda90a7d805e94a54d1c",
}

// TestMigrations_Unchanged: the embedded migration files are the landed
// ones, byte for byte, and every file is pinned in landedMigrations.
func TestMigrations_Unchanged(t *testing.T) {
	t.Parallel()
	if historyErr != nil {
		t.Fatal(historyErr)
	}
	for _, problem := range migrations.Unlanded(history, landedMigrations) {
		t.Error(problem)
	}
}
