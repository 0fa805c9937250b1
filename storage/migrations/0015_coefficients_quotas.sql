-- Issue 14: one source for coefficients and quotas, each product's own energy.
--
-- The rows of `coefficients` and `quotas` are written from analytics (analytics/coefficients.py
-- and analytics/data/quotas.csv) by storage.registry.sync_reference at every registry load, so
-- no number is copied here: 0002 seeded 6 of the 26 coefficients and 6 quota rows by hand.
-- Coefficients are now kgce per *base* unit of analytics (kg, m3, MJ, kWh); the kgce per meter
-- unit is analytics.coefficients.resolve(carrier, unit, coefficient).
--
-- Meters gain `shares` (product -> share of the meter's energy, summing to 1: a meter serving
-- two products) and `feedstock` (原料用能, left out of GB 30180-2024's "原料用能不纳入" rows);
-- sites gain the altitude and local pressure read by GB 16780-2021's altitude correction.
SET LOCAL ROLE nxem_owner;

ALTER TABLE coefficients
  ADD COLUMN basis text NOT NULL DEFAULT 'calorific';

ALTER TABLE quotas
  ADD COLUMN product_cn      text,
  ADD COLUMN indicator_cn    text,
  ADD COLUMN table_ref       text,
  ADD COLUMN numerator       text NOT NULL DEFAULT 'energy'
    CHECK (numerator IN ('energy', 'energy_excl_feedstock', 'electricity', 'coal')),
  ADD COLUMN output_product  text,
  ADD COLUMN decimals        integer NOT NULL DEFAULT 0 CHECK (decimals BETWEEN 0 AND 6),
  ADD COLUMN correction      text,
  ADD COLUMN source          text;

ALTER TABLE sites
  ADD COLUMN altitude_m               double precision,
  ADD COLUMN atmospheric_pressure_pa  double precision CHECK (atmospheric_pressure_pa > 0);

ALTER TABLE meters
  ADD COLUMN shares     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(shares) = 'object'),
  ADD COLUMN feedstock  boolean NOT NULL DEFAULT false,
  ADD CONSTRAINT meters_feedstock_consumed CHECK (NOT feedstock OR role = 'consumed');
