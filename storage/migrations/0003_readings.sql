-- readings, native PostgreSQL path: daily range partitions (UTC days), BRIN on ts.
-- (With TimescaleDB, storage/sql_timescale/0003_readings.sql replaces this file.)
-- No foreign key to meters: the collector only emits registered meter ids, and a key check
-- per row would cost the COPY path more than the whole insert.
SET LOCAL ROLE nxem_owner;

CREATE TABLE readings (
  meter_id  integer NOT NULL,
  ts        timestamptz NOT NULL,
  value     double precision NOT NULL,
  PRIMARY KEY (meter_id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX readings_ts_brin ON readings USING brin (ts);

-- Creates the missing daily partitions covering [from_day, to_day] (UTC dates). SECURITY
-- DEFINER so the ingest role can create partitions for late data without owning the table;
-- an advisory lock serialises concurrent workers. Returns how many it created.
CREATE FUNCTION nxem_ensure_reading_partitions(from_day date, to_day date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
DECLARE
  d date := from_day;
  part text;
  created integer := 0;
BEGIN
  IF to_day < from_day THEN
    RETURN 0;
  END IF;
  IF to_day - from_day > 3700 THEN
    RAISE EXCEPTION 'refusing to create % daily partitions at once (% .. %)', to_day - from_day + 1, from_day, to_day;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('nxem.readings.partitions'));
  WHILE d <= to_day LOOP
    part := 'readings_' || to_char(d, 'YYYYMMDD');
    IF to_regclass('public.' || part) IS NULL THEN
      EXECUTE format('CREATE TABLE public.%I PARTITION OF public.readings FOR VALUES FROM (%L) TO (%L)',
                     part, (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
      created := created + 1;
    END IF;
    d := d + 1;
  END LOOP;
  RETURN created;
END $$;
REVOKE ALL ON FUNCTION nxem_ensure_reading_partitions(date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nxem_ensure_reading_partitions(date, date) TO nxem_ingest;

-- Partitions from 7 days ago to 7 days ahead; the workers create others on demand.
SELECT nxem_ensure_reading_partitions((now() AT TIME ZONE 'UTC')::date - 7, (now() AT TIME ZONE 'UTC')::date + 7);

-- Row-level security on readings: a row is visible when its meter is (meters has RLS).
-- Partitions get no grants, so they cannot be read around the parent's policy.
ALTER TABLE readings ENABLE ROW LEVEL SECURITY;
ALTER TABLE readings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON readings USING (meter_id IN (SELECT id FROM meters));

GRANT SELECT, INSERT ON readings TO nxem_ingest;
