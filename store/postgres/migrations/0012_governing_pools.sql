-- 0012_governing_pools: which attachments govern, kept on campaign_pools.
--
-- A claim, a failure and an expiry ask what governs the pool: the campaign
-- attached to it that is In Process or Paused, if any. They read it
-- through campaign_pools_pool, every campaign ever attached to the pool:
-- a finished campaign stays attached, and a pool dialled by a new campaign
-- every day read hundreds. governs is true on the attachments of
-- governing campaigns, written by the store with the campaign's status
-- (UpdateCampaign) and on attach (AttachPool), and campaign_pools_governs
-- holds only those: one seek, whatever the pool's past.
--
-- Existing attachments take their campaign's status. The nodes of version
-- 11, which would not keep the column, fail on this schema (their guard,
-- see 0007).
ALTER TABLE campaign_pools ADD COLUMN governs boolean NOT NULL DEFAULT false;

UPDATE campaign_pools cp SET governs = true
FROM campaigns c WHERE c.id = cp.campaign_id AND c.status IN ('In Process', 'Paused');

CREATE INDEX campaign_pools_governs ON campaign_pools (pool_id) WHERE governs;
