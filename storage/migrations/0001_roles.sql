-- Roles (cluster-wide, so created only when missing and re-asserted every time) and the
-- tenant-visibility function that every row-level security policy and tenant view uses.
-- See storage/roles.py for what each role is for.
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM (VALUES
      ('nxem_owner', 'NOLOGIN NOBYPASSRLS'),
      ('nxem_all_tenants', 'NOLOGIN NOBYPASSRLS'),
      -- BYPASSRLS: COPY FROM is refused where row security applies to the caller (fast ingest).
      ('nxem_ingest', 'LOGIN BYPASSRLS'),
      ('nxem_portal', 'LOGIN NOBYPASSRLS'),
      ('nxem_inspector', 'LOGIN NOBYPASSRLS')) AS t(name, attrs)
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', r.name, r.attrs);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created meanwhile by a migration of another database of this cluster
      END;
    END IF;
    EXECUTE format('ALTER ROLE %I %s', r.name, r.attrs);
  END LOOP;
  IF NOT pg_has_role('nxem_ingest', 'nxem_all_tenants', 'MEMBER') THEN
    GRANT nxem_all_tenants TO nxem_ingest;
  END IF;
  IF NOT pg_has_role('nxem_inspector', 'nxem_all_tenants', 'MEMBER') THEN
    GRANT nxem_all_tenants TO nxem_inspector;
  END IF;
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO nxem_ingest, nxem_portal, nxem_inspector',
                 current_database());
END $$;

-- The ingest role runs short OLTP statements: JIT compilation only adds latency (~70 ms per
-- poll measured), and the staged path sorts a poll in memory rather than on disk.
ALTER ROLE nxem_ingest SET jit = off;
ALTER ROLE nxem_ingest SET work_mem = '64MB';

GRANT USAGE, CREATE ON SCHEMA public TO nxem_owner;
GRANT USAGE ON SCHEMA public TO nxem_ingest, nxem_portal, nxem_inspector;

SET LOCAL ROLE nxem_owner;

-- True when the current session may see rows of enterprise `ent`:
--  * its transaction bound app.enterprise_id to that enterprise (portal, one tenant), or
--  * it bound app.role = 'inspector' (portal, inspector user), or
--  * the session's role is a member of nxem_all_tenants (ingest, inspector login, superuser).
-- current_user is the session's role even inside a view owned by nxem_owner, which is what
-- lets definer views over continuous aggregates filter per session.
CREATE OR REPLACE FUNCTION nxem_visible(ent text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT coalesce(ent = nullif(current_setting('app.enterprise_id', true), ''), false)
      OR coalesce(current_setting('app.role', true) = 'inspector', false)
      OR pg_has_role(current_user, 'nxem_all_tenants', 'MEMBER')
$$;
REVOKE ALL ON FUNCTION nxem_visible(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nxem_visible(text) TO nxem_ingest, nxem_portal, nxem_inspector;
