package postgres

// PoolCampaignsStatements are the two statements that read the campaigns
// of a pool (the first by its internal id $K, the second by its UUID $U,
// which a claim sends with the pool's lock), for TestPlans_PoolCampaigns.
var PoolCampaignsStatements = []struct{ Name, SQL, Arg string }{
	{"pool campaigns by key", poolCampaignsSQL, "$K"},
	{"pool campaigns by uuid", campaignsOfPoolSQL, "$U"},
}

// RulePoolsSQL is the statement of RulePools ($1 the rule's UUID, $2 and $3
// the governing statuses), for TestPlans_RuleCampaigns.
var RulePoolsSQL = rulePoolsSQL
