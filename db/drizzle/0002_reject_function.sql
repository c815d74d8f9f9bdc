-- Aborts the statement it is evaluated in. A tracked write claims its transaction id and writes
-- its row in one statement; when the row's guard (id, organization, not deleted, expected
-- version) matches nothing, the statement calls this so the claim is rolled back with it.
CREATE OR REPLACE FUNCTION sync_reject(reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RAISE EXCEPTION '%', reason USING ERRCODE = 'SY409';
END
$$;
