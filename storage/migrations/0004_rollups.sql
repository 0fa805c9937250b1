-- Rollups per meter, native PostgreSQL path. Each row holds value statistics of one meter in
-- one bucket (count, sum, min, max, first and last value with their timestamps), never
-- energy: a register meter's energy in a bucket is last_value − the previous bucket's
-- last_value, taken with lag() at query time (storage/queries.py).
--
-- * rollup_1d (Asia/Shanghai days): a table, merged by the workers inside the ingest
--   transaction from the rows they actually inserted (storage/rollups.py), so late and
--   out-of-order readings update their day exactly.
-- * rollup_15m, rollup_1h: views over readings. With 15-minute meters a 15-minute rollup
--   table would copy readings row for row and, maintained per poll, cut ingest from ~500 k to
--   ~55 k rows/s (bench/storage_ingest.py); over the primary key (meter_id, ts) the view is as
--   fast and always exact, late data included.
-- (With TimescaleDB, storage/sql_timescale/0004_rollups.sql makes all three continuous
-- aggregates with the same names and columns.)
SET LOCAL ROLE nxem_owner;

CREATE TABLE rollup_1d (
  meter_id     integer NOT NULL,
  bucket       timestamptz NOT NULL,  -- 00:00 Asia/Shanghai of the day
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
ALTER TABLE rollup_1d ENABLE ROW LEVEL SECURITY;
ALTER TABLE rollup_1d FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON rollup_1d USING (meter_id IN (SELECT id FROM meters));
GRANT SELECT, INSERT, UPDATE ON rollup_1d TO nxem_ingest;

-- first/last value without a sort: the value at min/max of an [epoch, value] array.
-- date_bin, not date_trunc: buckets must not depend on the session's TimeZone.
CREATE VIEW rollup_15m AS
SELECT r.meter_id,
       date_bin(INTERVAL '15 minutes', r.ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       count(*)::integer AS n, sum(r.value) AS sum_value, min(r.value) AS min_value, max(r.value) AS max_value,
       min(r.ts) AS first_ts, (min(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2] AS first_value,
       max(r.ts) AS last_ts, (max(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2] AS last_value
FROM readings r
GROUP BY r.meter_id, date_bin(INTERVAL '15 minutes', r.ts, TIMESTAMPTZ '2000-01-01 00:00:00+00');

CREATE VIEW rollup_1h AS
SELECT r.meter_id,
       date_bin(INTERVAL '1 hour', r.ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       count(*)::integer AS n, sum(r.value) AS sum_value, min(r.value) AS min_value, max(r.value) AS max_value,
       min(r.ts) AS first_ts, (min(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2] AS first_value,
       max(r.ts) AS last_ts, (max(ARRAY[extract(epoch FROM r.ts)::float8, r.value]))[2] AS last_value
FROM readings r
GROUP BY r.meter_id, date_bin(INTERVAL '1 hour', r.ts, TIMESTAMPTZ '2000-01-01 00:00:00+00');
