-- readings, TimescaleDB 2.28 path (replaces storage/migrations/0003_readings.sql).
-- Hypertable with daily chunks. create_default_indexes => false: the primary key
-- (meter_id, ts) serves every query and the default (ts DESC) index costs ~30 % of COPY
-- speed (shared/notes/stack-facts.md). Compressed by meter, ordered by ts.
-- No row-level security here: TimescaleDB refuses RLS on a hypertable that uses compression
-- and continuous aggregates on a table with RLS (timescale/timescaledb#6827, #6832). The
-- portal has no grant on readings and reads v_readings (0006), which filters by tenant.
CREATE EXTENSION IF NOT EXISTS timescaledb;

SET LOCAL ROLE nxem_owner;

CREATE TABLE readings (
  meter_id  integer NOT NULL,
  ts        timestamptz NOT NULL,
  value     double precision NOT NULL,
  PRIMARY KEY (meter_id, ts)
);
SELECT create_hypertable('readings', by_range('ts', INTERVAL '1 day'), create_default_indexes => false);
ALTER TABLE readings SET (
  timescaledb.compress,
  timescaledb.compress_segmentby = 'meter_id',
  timescaledb.compress_orderby = 'ts'
);

GRANT SELECT, INSERT ON readings TO nxem_ingest;
