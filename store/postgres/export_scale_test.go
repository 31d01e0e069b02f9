package postgres

// PoolCampaignsStatements are the statements that read the campaigns of a
// pool (by its internal id $K, or by its UUID $U: those a claim sends with
// the pool's lock), for TestPlans_PoolCampaigns: each with the index it
// must seek.
var PoolCampaignsStatements = []struct{ Name, SQL, Arg, Index string }{
	{"pool campaigns by key", poolCampaignsSQL, "$K", "campaign_pools_pool"},
	{"pool governors by uuid", governorsOfPoolSQL, "$U", "campaign_pools_governs"},
	{"pool attached by uuid", attachedSQL, "$U", "campaign_pools_pool"},
}

// RulePoolsSQL is the statement of RulePools ($1 the rule's UUID, $2 and $3
// the governing statuses, $4 the instant leases ended by), for
// TestPlans_RuleCampaigns.
var RulePoolsSQL = rulePoolsSQL

// ContactStatements are the statements that read a contact's items in
// every pool: ContactItems' in a read transaction and in a write one
// (the pools it locks first, then the items in those pools), for
// TestPlans_ContactItems: $1 the contact, $2 the pools locked.
var ContactStatements = []struct{ Name, SQL string }{
	{"contact items", contactItemsSQL},
	{"pools of contact", poolsOfContactSQL},
	{"contact items locked", contactItemsLockedSQL},
}
