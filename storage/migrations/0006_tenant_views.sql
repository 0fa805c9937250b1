-- The tenant-facing read relations, identical on both storage paths. The portal and the
-- inspector login have no grant on readings or the rollups: they read these views.
-- Why definer views and not RLS: with TimescaleDB, row security cannot be enabled on a
-- compressed hypertable, and continuous aggregates (materialised views) cannot have it at
-- all. These views are owned by nxem_owner and filter through meters, whose policy
-- evaluates nxem_visible() for the *session's* role and settings; security_barrier keeps a
-- caller's non-leakproof functions from seeing rows before that filter.
SET LOCAL ROLE nxem_owner;

CREATE VIEW v_readings WITH (security_barrier) AS
  SELECT r.meter_id, r.ts, r.value FROM readings r WHERE r.meter_id IN (SELECT id FROM meters);
CREATE VIEW v_rollup_15m WITH (security_barrier) AS
  SELECT r.* FROM rollup_15m r WHERE r.meter_id IN (SELECT id FROM meters);
CREATE VIEW v_rollup_1h WITH (security_barrier) AS
  SELECT r.* FROM rollup_1h r WHERE r.meter_id IN (SELECT id FROM meters);
CREATE VIEW v_rollup_1d WITH (security_barrier) AS
  SELECT r.* FROM rollup_1d r WHERE r.meter_id IN (SELECT id FROM meters);

GRANT SELECT ON v_readings, v_rollup_15m, v_rollup_1h, v_rollup_1d TO nxem_ingest, nxem_portal, nxem_inspector;
