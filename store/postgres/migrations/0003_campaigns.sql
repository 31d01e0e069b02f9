-- 0003_campaigns: contact rules, campaigns, and the pools attached to them.
--
-- As in 0001: internal bigint ids, UUIDs as uuid, times as bigint unix
-- nanoseconds, the enums spelled as package campaign lists them (CHECKed),
-- integers the API lets grow as bigint. Times of day are minutes after
-- midnight. search holds what a listing searches, case-folded in Go, for
-- strpos().

CREATE TABLE rules (
    id                     bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid                   uuid    NOT NULL UNIQUE,
    name                   text    NOT NULL,
    type                   text    NOT NULL CHECK (type IN ('call', 'text')),
    max_calls_per_day      bigint  NOT NULL CHECK (max_calls_per_day >= 1),
    max_total_calls        bigint  NOT NULL CHECK (max_total_calls >= 1),
    retry_interval_minutes integer CHECK (retry_interval_minutes >= 1),
    start_time             integer NOT NULL CHECK (start_time >= 0 AND start_time < 1440),
    end_time               integer CHECK (end_time >= 0 AND end_time < 1440),
    dnc_check              boolean NOT NULL,
    remove_on_opt_out      boolean NOT NULL,
    escalation_after       bigint  CHECK (escalation_after >= 0),
    escalation_type        text,
    escalation_target      text,
    created_at             bigint  NOT NULL,
    updated_at             bigint  NOT NULL,
    search                 text    NOT NULL
);

CREATE INDEX rules_created ON rules (created_at, uuid);

-- campaigns: rule_id is the campaign's one rule (a rule serves many); the
-- engine refuses to delete a rule in use, and the foreign key refuses it
-- too when another node assigns the rule meanwhile.
CREATE TABLE campaigns (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid       uuid   NOT NULL UNIQUE,
    name       text   NOT NULL,
    status     text   NOT NULL CHECK (status IN ('Draft', 'In Process', 'Paused', 'Completed', 'Archived')),
    rule_id    bigint REFERENCES rules (id),
    timezone   text   NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    search     text   NOT NULL
);

CREATE INDEX campaigns_created ON campaigns (created_at, uuid);
CREATE INDEX campaigns_rule ON campaigns (rule_id) WHERE rule_id IS NOT NULL;

-- campaign_pools: the pools of each campaign, in the order attached (seq).
-- A pool's campaigns are found through campaign_pools_pool: dispatch asks
-- for them at every claim, so a pool attached to none costs one seek that
-- finds nothing. Deleting a campaign or a pool detaches it.
CREATE TABLE campaign_pools (
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    pool_id     bigint NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    PRIMARY KEY (campaign_id, pool_id)
);

CREATE INDEX campaign_pools_pool ON campaign_pools (pool_id, campaign_id);
CREATE INDEX campaign_pools_seq ON campaign_pools (campaign_id, seq);
