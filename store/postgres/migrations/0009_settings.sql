-- 0009_settings: what every node of a schema must agree on, recorded by
-- the first node that opens it (see checkLocking in postgres.go).
--
-- locking is how the nodes lock a pool (Options.Locking: AdvisoryLock or
-- RowLock). The two locks do not exclude each other: two nodes that took
-- them differently would claim from one pool at once, past its cap (two
-- items in flight in a FIFO pool). Open refuses a node whose Locking is
-- not the schema's; to change it, stop every node and delete the row.
CREATE TABLE settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);
