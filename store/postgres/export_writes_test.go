package postgres

// WriteStatements are the statements of Add (the inserts of items and
// their counts), of the contact lists (DNC and opt-out inserts and reads),
// of a campaign's pools and a rule's
// campaigns' pools, of attaching and detaching (the calls kept for a
// campaign) and of the kept calls' reads, for TestPlans and
// TestPlans_Analyzed: as HotStatements, each with the index its plan must
// use and its arguments, campaign 1 a campaign of the store.
var WriteStatements = []struct {
	Name, SQL, Index string
	Args             []string
}{
	{"insert items", insertItemsSQL, "items_pool_id_contact_uuid_key", []string{"$K", contactsArg, "'{0}'", "'{NULL}'", "'{0}'",
		"'{Pending}'", "'{0}'", "'{0}'", "'{NULL}'", "'{NULL}'", "'{NULL}'", "'{NULL}'", "'{\"\"}'", "'{0}'", "'{NULL}'",
		"'{NULL}'", "'{NULL}'", "'{NULL}'", "'{NULL}'", "'{NULL}'", "'{NULL}'", "'{0}'", "'{0}'", "'{NULL}'", "'{0}'", "'{NULL}'", "'{0}'"}},
	{"insert new contact items", insertNewContactItemsSQL, "items_pool_id_contact_uuid_key", []string{"$K", contactsArg, "'{0}'",
		"'{NULL}'", "'{0}'", "'{a}'", "'{NULL}'", "'{NULL}'", "'{NULL}'", "'{NULL}'"}},
	{"add dnc", addDNCSQL, "Insert on dnc", []string{contactsArg, "1"}},
	{"remove dnc", removeDNCSQL, "dnc_pkey", []string{contactsArg}},
	{"on dnc", onDNCSQL, "dnc_pkey", []string{contactsArg}},
	{"opt out", optOutSQL, "Insert on opt_outs", []string{"'00000000-0000-0000-0000-000000000001'", "1"}},
	{"opted out", optedOutSQL, "opt_outs_pkey", []string{contactsArg}},
	{"listed", listedSQL, "opt_outs_pkey", []string{contactsArg}},
	{"campaign by uuid", campaignByUUIDSQL, "campaign_pools_seq", []string{"'00000000-0000-0000-0000-000000000001'"}},
	{"campaign by id", campaignByIDSQL, "campaign_pools_seq", []string{"1"}},
	{"pools of campaign", poolsOfCampaignSQL, "Index Cond: (campaign_id = $1)", []string{"1"}},
	{"rule pools", rulePoolsSQL, "campaigns_rule", []string{"'00000000-0000-0000-0000-000000000001'", "'In Process'", "'Paused'", "0"}},
	{"attach pool", attachPoolSQL, "campaign_pools_seq", []string{"1", "$K", "'In Process'", "'Paused'"}},
	{"governs", governsSQL, "Index Cond: (campaign_id = $1)", []string{"1", "true"}},
	{"keep detached calls", keepDetachedCallsSQL, "Index Cond: (pool_id = $2)", []string{"1", "$K", "'Completed'", "'Archived'"}},
	{"drop kept calls", dropKeptCallsSQL, "kept_calls_contact", []string{"1", "$K"}},
	{"keep pool calls", keepPoolCallsSQL, "Index Scan using items_pool", []string{"$K", "'Completed'", "'Archived'"}},
	{"release kept call", releaseKeptCallSQL, "kept_calls_lease", []string{"1", "1", "1"}},
	{"keeping campaigns", keepingCampaignsSQL, "kept_calls_lease", []string{"1", "1"}},
	{"campaign calls", campaignCallsSQL, "items_lease", []string{"'00000000-0000-0000-0000-000000000001'", "1"}},
}

// contactsArg is a literal array of two contacts.
const contactsArg = "'{00000000-0000-0000-0000-000000000001,00000000-0000-0000-0000-000000000002}'"

// CampaignsSQL is campaignsSQL: Campaigns' count and page for q, and
// their arguments.
var CampaignsSQL = campaignsSQL

// RulesSQL is rulesSQL: Rules' count and page for q, and their arguments.
var RulesSQL = rulesSQL
