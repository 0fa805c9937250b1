-- Bump the registry version once per transaction, not once per statement: a registry load
-- upserts each gateway's meters as its own statement, and 100 000 updates of the one
-- registry_version row inside a single transaction made loading a 100 000-meter registry take
-- minutes (every update adds a row version no one may prune until the commit). Readers only
-- see the new version at commit anyway, so one bump per transaction is the same signal.
SET LOCAL ROLE nxem_owner;

CREATE OR REPLACE FUNCTION nxem_bump_registry_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
  IF current_setting('nxem.registry_version_bumped', true) = 'on' THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('nxem.registry_version_bumped', 'on', true);  -- true: until the transaction ends
  UPDATE registry_version SET version = version + 1, changed_at = now();
  RETURN NULL;
END $$;
