-- 0003_cheaper_constraints: constraints that do not slow every row down.
--
-- Two costs were hidden in the constraints of 0001, both paid per row:
--
-- 1. SQLite evaluates a CHECK of the form x IN ('a', 'b', 'c', …) by
--    building a temporary B-tree of the list, for every row written. The
--    check on items.status was a sixth of the cost of a dispatch or a
--    settlement. A chain of ORs of the same values accepts exactly the same
--    rows and costs a few comparisons. (Lists of two values are compiled to
--    comparisons already: the partial indexes' conditions stay as they are.)
--
-- 2. A multi-row INSERT that may abort half-way must be able to undo the
--    rows it already wrote, so SQLite copies every page it touches into a
--    statement journal first. A CHECK calling a function (json_valid,
--    length) and an immediate foreign key each make the batched INSERT of
--    items such a statement (INSERT OR FAIL takes care of the plain
--    checks): the journal was a seventh of a bulk add. The store checks
--    payloads as JSON in Go before it writes them, and a contact is a
--    uuid.UUID, 16 bytes by its type, so those two checks go; the foreign
--    key to pools is deferred to COMMIT, where it is still enforced (and
--    ON DELETE CASCADE still acts at once).
--
-- Only the text of the tables changes, so they are not rebuilt: their
-- entries in sqlite_schema are edited in place, the procedure SQLite
-- documents for changing CHECK and FOREIGN KEY constraints
-- (lang_altertable.html, "Making Other Kinds Of Table Schema Changes").
-- Every existing row satisfies the new constraints, which are the old ones
-- or fewer. The migration runner then bumps the schema cookie, so that
-- other connections read the new text too.
PRAGMA writable_schema = ON;

UPDATE sqlite_schema
SET sql = replace(sql,
    'CHECK (status IN (''Pending'', ''Processing'', ''In_Call'', ''Retrying'', ''Scheduled'', ''Completed'', ''Failed'', ''Skipped''))',
    'CHECK (status = ''Pending'' OR status = ''Processing'' OR status = ''In_Call'' OR status = ''Retrying'' OR status = ''Scheduled'' OR status = ''Completed'' OR status = ''Failed'' OR status = ''Skipped'')')
WHERE type = 'table' AND name IN ('items', 'pool_counts');

UPDATE sqlite_schema
SET sql = replace(sql,
    'CHECK (type IN (''FIFO'', ''LIFO'', ''Parallel''))',
    'CHECK (type = ''FIFO'' OR type = ''LIFO'' OR type = ''Parallel'')')
WHERE type = 'table' AND name = 'pools';

UPDATE sqlite_schema
SET sql = replace(replace(replace(sql,
    'contact_uuid     BLOB    NOT NULL CHECK (length(contact_uuid) = 16),',
    'contact_uuid     BLOB    NOT NULL,'),
    'payload          TEXT    CHECK (payload IS NULL OR json_valid(payload)),',
    'payload          TEXT,'),
    'REFERENCES pools (id) ON DELETE CASCADE,',
    'REFERENCES pools (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,')
WHERE type = 'table' AND name = 'items';

-- RESET turns writable_schema off and makes this connection parse the
-- schema again.
PRAGMA writable_schema = RESET;
