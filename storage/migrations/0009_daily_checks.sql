-- Daily checks (stream/daily.py): which Asia/Shanghai days the once-a-day job has checked
-- (daily-vs-monthly agreement per register meter, consumption anomalies per meter), so a
-- restarted or another worker neither redoes nor skips a day. One row per checked day.
-- * scheduled: true when the worker's schedule checked it; the schedule continues from the
--   newest scheduled day. A check run on demand (`nxem daily-checks --day`) is recorded with
--   false and does not move the schedule.
-- * summary: what was checked and skipped (counts per reason), for operators.
-- Same table on the TimescaleDB path (no override in sql_timescale/).
SET LOCAL ROLE nxem_owner;

CREATE TABLE daily_checks (
  local_day   date PRIMARY KEY,
  scheduled   boolean NOT NULL,
  checked_at  timestamptz NOT NULL,
  summary     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(summary) = 'object')
);
GRANT SELECT, INSERT, UPDATE ON daily_checks TO nxem_ingest;
GRANT SELECT ON daily_checks TO nxem_inspector;
