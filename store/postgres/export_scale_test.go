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
// the governing statuses), for TestPlans_RuleCampaigns.
var RulePoolsSQL = rulePoolsSQL
