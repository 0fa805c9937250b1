-- Rollups per meter, TimescaleDB 2.28 path (replaces storage/migrations/0004_rollups.sql):
-- continuous aggregates with the same names and columns as the native rollup tables, plus
-- an hourly one. Real-time aggregation on (materialized_only = false) so fresh readings are
-- visible before the refresh policy (storage/timescale.py) materialises them.
-- Daily buckets are Asia/Shanghai days (time_bucket with a time zone).
SET LOCAL ROLE nxem_owner;

CREATE MATERIALIZED VIEW rollup_15m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT meter_id,
       time_bucket(INTERVAL '15 minutes', ts) AS bucket,
       count(*)::integer AS n,
       sum(value) AS sum_value,
       min(value) AS min_value,
       max(value) AS max_value,
       min(ts) AS first_ts,
       first(value, ts) AS first_value,
       max(ts) AS last_ts,
       last(value, ts) AS last_value
FROM readings
GROUP BY meter_id, time_bucket(INTERVAL '15 minutes', ts)
WITH NO DATA;

CREATE MATERIALIZED VIEW rollup_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT meter_id,
       time_bucket(INTERVAL '1 hour', ts) AS bucket,
       count(*)::integer AS n,
       sum(value) AS sum_value,
       min(value) AS min_value,
       max(value) AS max_value,
       min(ts) AS first_ts,
       first(value, ts) AS first_value,
       max(ts) AS last_ts,
       last(value, ts) AS last_value
FROM readings
GROUP BY meter_id, time_bucket(INTERVAL '1 hour', ts)
WITH NO DATA;

CREATE MATERIALIZED VIEW rollup_1d
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT meter_id,
       time_bucket(INTERVAL '1 day', ts, 'Asia/Shanghai') AS bucket,
       count(*)::integer AS n,
       sum(value) AS sum_value,
       min(value) AS min_value,
       max(value) AS max_value,
       min(ts) AS first_ts,
       first(value, ts) AS first_value,
       max(ts) AS last_ts,
       last(value, ts) AS last_value
FROM readings
GROUP BY meter_id, time_bucket(INTERVAL '1 day', ts, 'Asia/Shanghai')
WITH NO DATA;

CREATE INDEX rollup_15m_meter_bucket ON rollup_15m (meter_id, bucket);
CREATE INDEX rollup_1h_meter_bucket ON rollup_1h (meter_id, bucket);
CREATE INDEX rollup_1d_meter_bucket ON rollup_1d (meter_id, bucket);

