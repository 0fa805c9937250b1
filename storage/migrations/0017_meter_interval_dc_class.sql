-- Issue 14: each meter's reading interval; a data centre's size and where its PUE limit comes from.
--
-- * meters.interval_s: the meter's reading interval in seconds (registry `interval`, default
--   15 minutes; 30 min or 1 h are allowed by the national online-monitoring rules). It divides
--   a day, so a day holds a whole number of expected readings: completeness (≥ 90 % of *its*
--   intervals), silence (4 of its intervals) and an interval meter's coverage are judged on it.
--   Existing meters keep 900 (what every meter was assumed to read at).
-- * sites.standard_racks / it_capacity_kw: a data centre's size (standard racks of 2.5 kW; the
--   IT capacity when the racks are not given), classed 超大型 ≥ 10 000, 大型 3 000–10 000,
--   中小型 < 3 000 racks (analytics/pue.py cites the classification).
-- * sites.pue_limit_source: where the stored pue_limit comes from -- the site's own, or derived
--   at registry load (1.2 for a new large or very large centre, the GB 40879-2021 limit value
--   1.50 otherwise). Rows loaded before this migration have NULL: their 1.2 was the default
--   every centre got; loading the registry again derives theirs.
-- * sites.pue_window_hours defaults to 168 (7 days): the window of the operational warning; the
--   compliance figure is the annual PUE.
SET LOCAL ROLE nxem_owner;

ALTER TABLE meters
  ADD COLUMN interval_s integer NOT NULL DEFAULT 900
    CONSTRAINT meters_interval_divides_a_day CHECK (interval_s > 0 AND 86400 % interval_s = 0);

ALTER TABLE sites
  ADD COLUMN standard_racks    integer CHECK (standard_racks >= 0),
  ADD COLUMN it_capacity_kw    double precision CHECK (it_capacity_kw > 0),
  ADD COLUMN pue_limit_source  text,
  ALTER COLUMN pue_window_hours SET DEFAULT 168;
