-- The schema owner may LOG IN, and holds no password: TimescaleDB runs its policies
-- (compression, retention, continuous aggregate refresh) as background workers under the
-- hypertables' owner, and refuses them for a NOLOGIN owner ("Hypertable owner must have LOGIN
-- permission to run background tasks"). Background workers do not authenticate; clients do:
-- PASSWORD NULL makes every password authentication as nxem_owner fail, and pg_hba.conf rejects
-- the role outright (the local runner writes that line; deploy/ carries it for production).
-- Same on the native path: roles are cluster-wide, and a cluster may hold databases of both.
-- Supersedes the NOLOGIN of 0001 (applied, never edited); the migration runner re-asserts this
-- in every migration transaction, since 0001 re-runs for each new database of the cluster.
ALTER ROLE nxem_owner LOGIN PASSWORD NULL NOBYPASSRLS;
