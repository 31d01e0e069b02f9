package postgres

import (
	"testing"

	"github.com/poolq/poolq/store/internal/migrations"
)

// landedMigrations pins the SHA-256 of every migration file that has
// landed (see migrations.Unlanded): an edit would reach new databases only
// and leave deployed ones with another schema than this code expects
// (0004 and 0008 were edited in place during development, before they were
// released). To change the schema, add the next numbered file
// (migrations/NNNN_name.sql) instead. A new file fails
// TestMigrations_Unchanged until its hash is added below; the failure
// prints the line to add.
var landedMigrations = map[string]string{
	"0001_init.sql":                "392f7f6048b3e326d4df9cba65414c990b1e6720379e4c5df3f12013b4d97fbf",
	"0002_item_contacts.sql":       "0b951b8afa84087afdd58bc22a0e1ef1932e8f037a6f668f40fa5cba88966b0a",
	"0003_campaigns.sql":           "3d395c25bcd72b9197bf058ccd030bfbe7f776304d5036f9ad927ee187651b56",
	"0004_calling_rules.sql":       "d7e8fc77fcbcdf20afb8e5e37787d5bf2de1fdbb93f463fb364a9370299577d8",
	"0005_expect_rows.sql":         "e97b94d9935ee5e89c98ec6c9816774556803ade7933af898d853dd380fbe870",
	"0006_call_at.sql":             "38fe7e38ad8074219edb7adcc891e3da14b806d242dafce874fb2fb7cfd624aa",
	"0007_schema_guard.sql":        "a261f2587f87eaf0b5ad18db6cf4290ef237f937d1a6a209590a979d8ebd918c",
	"0008_kept_calls.sql":          "90a7f99ea3724c635ad0266f844809b9661c02627476176d59ff22bc3fde5105",
	"0009_settings.sql":            "6227cc8c950507248905a412c14fae045d8090743cb937e7e7e7b2b06249ece7",
	"0010_prev_call_day.sql":       "a79a4cbe449ca3b9d85ca98e95e81943b04a45be5693525f0ee858b83439cfa8",
	"0011_older_call_day.sql":      "d4d3e3d94abe0ee3f757fdcf06567198ac7f7f16ad384e2a344ceff3cc9ce026",
	"0012_governing_pools.sql":     "bd65744e112c8eb22abc961cd29f57b55350db26dfff6dcbd8b8471db8b21cab",
	"0013_finished_kept_calls.sql": "775eecd0bebcbfe1cb9c464b69ff65cc393eda5df83aa41993cd4dba0691f0b1",
	"0014_campaign_listings.sql":   "45b588cd97ef723e46ad69169df938b1ffbbe985bd5af203c3bbc43bf6cc97d7",
	"0015_pool_estimates.sql":      "a9a54c39986c824da4920d3aa19b36263c5110e4020c56db65f73e0a2428c629",
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
