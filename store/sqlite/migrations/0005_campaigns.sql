-- 0005_campaigns: contact rules, campaigns, and the pools attached to them.
--
-- As in 0001: STRICT tables, 16-byte UUIDs, times in unix nanoseconds, the
-- enums spelled as package campaign lists them (CHECKed as chains of ORs,
-- see 0003). Times of day are minutes after midnight. search holds what a
-- listing searches, case-folded in Go, for instr().

CREATE TABLE rules (
    id                     INTEGER PRIMARY KEY,
    uuid                   BLOB    NOT NULL UNIQUE,
    name                   TEXT    NOT NULL,
    type                   TEXT    NOT NULL CHECK (type = 'call' OR type = 'text'),
    max_calls_per_day      INTEGER NOT NULL CHECK (max_calls_per_day >= 1),
    max_total_calls        INTEGER NOT NULL CHECK (max_total_calls >= 1),
    retry_interval_minutes INTEGER CHECK (retry_interval_minutes >= 1),
    start_time             INTEGER NOT NULL CHECK (start_time >= 0 AND start_time < 1440),
    end_time               INTEGER CHECK (end_time >= 0 AND end_time < 1440),
    dnc_check              INTEGER NOT NULL CHECK (dnc_check = 0 OR dnc_check = 1),
    remove_on_opt_out      INTEGER NOT NULL CHECK (remove_on_opt_out = 0 OR remove_on_opt_out = 1),
    escalation_after       INTEGER CHECK (escalation_after >= 0),
    escalation_type        TEXT,
    escalation_target      TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    search                 TEXT    NOT NULL
) STRICT;

CREATE INDEX rules_created ON rules (created_at, uuid);

-- campaigns: rule_id is the campaign's one rule (a rule serves many); the
-- engine refuses to delete a rule in use.
CREATE TABLE campaigns (
    id         INTEGER PRIMARY KEY,
    uuid       BLOB    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status = 'Draft' OR status = 'In Process' OR status = 'Paused'
                                       OR status = 'Completed' OR status = 'Archived'),
    rule_id    INTEGER REFERENCES rules (id),
    timezone   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    search     TEXT    NOT NULL
) STRICT;

CREATE INDEX campaigns_created ON campaigns (created_at, uuid);
CREATE INDEX campaigns_rule ON campaigns (rule_id) WHERE rule_id IS NOT NULL;

-- campaign_pools: the pools of each campaign, in the order attached (seq).
-- A pool's campaigns are found through campaign_pools_pool: a dispatch
-- asks for them, so a pool attached to none costs one seek that finds
-- nothing. Deleting a campaign or a pool detaches it.
CREATE TABLE campaign_pools (
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    pool_id     INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, pool_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX campaign_pools_pool ON campaign_pools (pool_id, campaign_id);
CREATE INDEX campaign_pools_seq ON campaign_pools (campaign_id, seq);
