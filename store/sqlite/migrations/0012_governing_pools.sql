-- 0012_governing_pools: which attachments govern, kept on campaign_pools.
--
-- A claim, a failure and an expiry ask what governs the pool: the campaign
-- attached to it that is In Process or Paused, if any. They read it
-- through campaign_pools_pool, every campaign ever attached to the pool:
-- a finished campaign stays attached, and a pool dialled by a new campaign
-- every day read hundreds (a claim took 10 ms beside 1,000 finished
-- campaigns). governs is 1 on the attachments of governing campaigns,
-- written by the store with the campaign's status (UpdateCampaign) and on
-- attach (AttachPool), and campaign_pools_governs holds only those: one
-- seek, whatever the pool's past. The store reads it with
-- campaign_pools_pool's first entry (is the pool attached at all).
--
-- Existing attachments take their campaign's status. A process of version
-- 11, which would not keep the column, refuses to write to this file.
ALTER TABLE campaign_pools ADD COLUMN governs INTEGER NOT NULL DEFAULT 0 CHECK (governs = 0 OR governs = 1);

UPDATE campaign_pools SET governs = 1
WHERE campaign_id IN (SELECT id FROM campaigns WHERE status = 'In Process' OR status = 'Paused');

CREATE INDEX campaign_pools_governs ON campaign_pools (pool_id) WHERE governs = 1;
