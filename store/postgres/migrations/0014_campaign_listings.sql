-- 0014_campaign_listings: campaigns by status, and a rule's in order.
--
-- A listing of campaigns pages them in creation order (created_at, uuid;
-- per_page at most 100). Filtered by status (the REST API's filter, with
-- a search or without), it walked campaigns_created and filtered every
-- campaign the store ever had, and counted them with a scan of the table;
-- filtered by rule (the REST listing by rule, and DeleteRule's check that
-- a rule is unused, a page of one) it walked campaigns_created up to the
-- rule's first campaign: every campaign when the rule has none, the
-- check's success. campaigns_status holds the campaigns by status in
-- creation order, and campaigns_rule now holds a rule's in creation order
-- too: either page is a seek, then a walk of the page's rows, and either
-- count a range of one index.
--
-- The cost on writes: an insert of a campaign adds an entry to
-- campaigns_status, and an update that changes a campaign's status (a
-- start, a pause, a completion: an operator's action, a few times in a
-- campaign's life) moves it; an update that keeps the status and the rule
-- changes no entry of either index and may stay a HOT update, as before.
-- Dispatch never writes campaigns.
--
-- Cost of the migration: both indexes built from one read of campaigns
-- (one row per campaign). The nodes of version 13 fail on this schema
-- (their guard, see 0007), as after every migration.
CREATE INDEX campaigns_status ON campaigns (status, created_at, uuid);

DROP INDEX campaigns_rule;
CREATE INDEX campaigns_rule ON campaigns (rule_id, created_at, uuid) WHERE rule_id IS NOT NULL;
