package postgres

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
)

// errCampaignsTODO is the error of the campaign methods, which this store
// does not have yet: they are being written (see store/sqlite/campaigns.go
// for the reference). A pool attached to no campaign never reaches them
// but through PoolCampaigns, which answers "none".
var errCampaignsTODO = errors.New("postgres: rules and campaigns are not implemented yet")

func (t *txn) InsertRule(context.Context, campaign.Rule) error { return errCampaignsTODO }
func (t *txn) Rule(context.Context, uuid.UUID) (campaign.Rule, error) {
	return campaign.Rule{}, errCampaignsTODO
}
func (t *txn) UpdateRule(context.Context, campaign.Rule) error { return errCampaignsTODO }
func (t *txn) DeleteRule(context.Context, uuid.UUID) error     { return errCampaignsTODO }
func (t *txn) Rules(context.Context, campaign.RuleQuery) ([]campaign.Rule, int, error) {
	return nil, 0, errCampaignsTODO
}
func (t *txn) InsertCampaign(context.Context, campaign.Campaign) error { return errCampaignsTODO }
func (t *txn) Campaign(context.Context, uuid.UUID) (campaign.Campaign, error) {
	return campaign.Campaign{}, errCampaignsTODO
}
func (t *txn) UpdateCampaign(context.Context, campaign.Campaign) error { return errCampaignsTODO }
func (t *txn) DeleteCampaign(context.Context, uuid.UUID) error         { return errCampaignsTODO }
func (t *txn) Campaigns(context.Context, campaign.Query) ([]campaign.Campaign, int, error) {
	return nil, 0, errCampaignsTODO
}
func (t *txn) AttachPool(context.Context, uuid.UUID, uuid.UUID) (bool, error) {
	return false, errCampaignsTODO
}
func (t *txn) DetachPool(context.Context, uuid.UUID, uuid.UUID) (bool, error) {
	return false, errCampaignsTODO
}
func (t *txn) PoolCampaigns(context.Context, uuid.UUID) ([]campaign.Campaign, error) {
	return nil, nil
}
