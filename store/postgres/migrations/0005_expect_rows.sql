-- poolq_expect_rows fails its statement, and so the transaction, when a
-- write found fewer or more rows than it was given: the check of a batch
-- of item writes (UpdateItems), made by the server because the statement
-- travels with the transaction's next statement or with its COMMIT, where
-- the client could not look at the count before the commit. SQLSTATE
-- P0002 (no_data_found) is read as store.ErrNotFound.
CREATE FUNCTION poolq_expect_rows(got bigint, want bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF got <> want THEN
        RAISE EXCEPTION 'poolq: % of % items found in the status given', got, want
            USING ERRCODE = 'P0002';
    END IF;
    RETURN got;
END
$$;
