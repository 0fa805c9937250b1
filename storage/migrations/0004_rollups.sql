-- Rollups per meter, native PostgreSQL path: 15-minute buckets and Asia/Shanghai days,
-- maintained by the workers in the ingest transaction (storage/rollups.py). Each row keeps
-- value statistics, not energy: energy of a register meter needs the previous bucket's last
-- value, which the queries take with lag() (storage/queries.py).
-- (With TimescaleDB, storage/sql_timescale/0004_rollups.sql makes these continuous aggregates
-- with the same names and columns.)
SET LOCAL ROLE nxem_owner;

CREATE TABLE rollup_15m (
  meter_id     integer NOT NULL,
  bucket       timestamptz NOT NULL,  -- start of the 15-minute bucket
  n            integer NOT NULL,      -- readings in the bucket
  sum_value    double precision NOT NULL,
  min_value    double precision NOT NULL,
  max_value    double precision NOT NULL,
  first_ts     timestamptz NOT NULL,
  first_value  double precision NOT NULL,
  last_ts      timestamptz NOT NULL,
  last_value   double precision NOT NULL,
  PRIMARY KEY (meter_id, bucket)
);

CREATE TABLE rollup_1d (LIKE rollup_15m INCLUDING ALL);  -- bucket = 00:00 Asia/Shanghai

ALTER TABLE rollup_15m ENABLE ROW LEVEL SECURITY;
ALTER TABLE rollup_15m FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON rollup_15m USING (meter_id IN (SELECT id FROM meters));
ALTER TABLE rollup_1d ENABLE ROW LEVEL SECURITY;
ALTER TABLE rollup_1d FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON rollup_1d USING (meter_id IN (SELECT id FROM meters));

GRANT SELECT, INSERT, UPDATE ON rollup_15m, rollup_1d TO nxem_ingest;

-- Hourly rollup derived from the 15-minute one (four rows an hour). date_bin, not
-- date_trunc: the result must not depend on the session's TimeZone.
CREATE VIEW v_rollup_1h WITH (security_barrier) AS
SELECT r.meter_id,
       date_bin(INTERVAL '1 hour', r.bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       sum(r.n)::integer AS n,
       sum(r.sum_value) AS sum_value,
       min(r.min_value) AS min_value,
       max(r.max_value) AS max_value,
       min(r.first_ts) AS first_ts,
       (min(ARRAY[extract(epoch FROM r.first_ts)::float8, r.first_value]))[2] AS first_value,
       max(r.last_ts) AS last_ts,
       (max(ARRAY[extract(epoch FROM r.last_ts)::float8, r.last_value]))[2] AS last_value
FROM rollup_15m r
WHERE r.meter_id IN (SELECT id FROM meters)
GROUP BY r.meter_id, date_bin(INTERVAL '1 hour', r.bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00');
GRANT SELECT ON v_rollup_1h TO nxem_ingest, nxem_portal, nxem_inspector;
