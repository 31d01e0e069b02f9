package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/poolq/poolq/campaign"
	"github.com/stretchr/testify/require"
)

// TestRules_DeleteInUseAdviceWorksForAFinishedCampaign: the 409 CONFLICT of
// a DELETE of a rule in use tells the caller how to free the rule; when the
// only campaign holding it is Completed, the way it names must work. It
// names a PUT of the campaign's rule, which is a 409 WRONG_STATUS for a
// Completed or Archived campaign: the advice leads nowhere, and the rule
// can then only be freed by deleting the campaign (its record with it).
func TestRules_DeleteInUseAdviceWorksForAFinishedCampaign(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.createRule(map[string]any{"name": "Old"})
	other := b.createRule(map[string]any{"name": "New"})
	c := b.createCampaign("Spring", &r.UUID)
	require.Equal(t, http.StatusOK, b.act(c.UUID, campaign.Start).Status)
	require.Equal(t, http.StatusOK, b.act(c.UUID, campaign.Complete).Status)

	res := b.do("DELETE", "/api/v1/rules/"+r.UUID.String(), nil)
	requireError(t, res, http.StatusConflict, CodeConflict)
	details := res.Env.Error.Details
	if strings.Contains(details, "/api/v1/campaigns/{uuid}/rule") {
		put := b.do("PUT", "/api/v1/campaigns/"+c.UUID.String()+"/rule", map[string]any{"rule_uuid": other.UUID.String()})
		require.Equal(t, http.StatusOK, put.Status,
			"the 409 advised %q, but that PUT on the Completed campaign holding the rule is refused: %s", details, put.Body)
		res = b.do("DELETE", "/api/v1/rules/"+r.UUID.String(), nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	}
}
