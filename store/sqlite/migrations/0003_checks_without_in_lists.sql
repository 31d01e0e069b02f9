-- 0003_checks_without_in_lists: the enum CHECKs as comparisons.
--
-- SQLite evaluates a CHECK of the form x IN ('a', 'b', 'c', …) by building
-- a temporary B-tree of the list, for every row written: the check on
-- items.status was a sixth of the cost of a dispatch or a settlement. A
-- chain of ORs of the same values accepts exactly the same rows and costs a
-- few comparisons. (Lists of two values are compiled to comparisons
-- already: the partial indexes' conditions stay as they are.)
--
-- Only the text of the constraints changes, so the tables are not rebuilt:
-- their entries in sqlite_schema are edited in place, the procedure SQLite
-- documents for changing CHECK constraints (lang_altertable.html, "Making
-- Other Kinds Of Table Schema Changes"). Every existing row satisfies the
-- new constraints, which are the old ones written differently. The
-- migration runner then bumps the schema cookie, so every connection reads
-- the new text.
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

-- RESET turns writable_schema off and makes this connection parse the
-- schema again.
PRAGMA writable_schema = RESET;
