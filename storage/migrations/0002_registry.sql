-- Registry: enterprises, sites, gateways, meters (tenant tables, RLS on each), and the
-- reference tables (coefficients, quotas) every tenant may read.
SET LOCAL ROLE nxem_owner;

CREATE TABLE enterprises (
  id          text PRIMARY KEY CHECK (id ~ '^[0-9A-HJ-NP-RTUWXY]{18}$'),  -- USCC, GB 32100-2015
  name        text NOT NULL,
  city        text NOT NULL CHECK (city IN ('银川', '石嘴山', '吴忠', '固原', '中卫', '宁东')),
  industry    text NOT NULL CHECK (industry IN ('data_centre', 'calcium_carbide', 'methanol', 'coke',
                                                'ferroalloy', 'aluminium', 'cement', 'other')),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sites (
  id                 serial PRIMARY KEY,
  code               text NOT NULL UNIQUE,
  enterprise_id      text NOT NULL REFERENCES enterprises (id),
  kind               text NOT NULL CHECK (kind IN ('data_centre', 'plant')),
  name               text NOT NULL,
  new_build          boolean NOT NULL DEFAULT false,
  pue_limit          double precision NOT NULL DEFAULT 1.2 CHECK (pue_limit >= 1),
  pue_window_hours   integer NOT NULL DEFAULT 720 CHECK (pue_window_hours > 0),
  energy_budget_tce  double precision CHECK (energy_budget_tce > 0),
  products           jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(products) = 'array'),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  UNIQUE (id, enterprise_id)  -- target of the composite keys below: a child's tenant = its site's
);
CREATE INDEX sites_enterprise ON sites (enterprise_id);

CREATE TABLE gateways (
  id             text PRIMARY KEY,
  enterprise_id  text NOT NULL,
  site_id        integer NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (site_id, enterprise_id) REFERENCES sites (id, enterprise_id) ON UPDATE CASCADE
);
CREATE INDEX gateways_site ON gateways (site_id);

CREATE TABLE coefficients (
  id             text PRIMARY KEY,
  carrier        text NOT NULL,
  unit           text NOT NULL,
  kgce_per_unit  double precision NOT NULL CHECK (kgce_per_unit > 0),
  standard       text NOT NULL,
  confidence     text NOT NULL
);

-- kgce per meter unit. GB/T 2589 Table A.1 (2008 table as reproduced; the 2020 edition says
-- Annex A was modified), copied from shared/reference/coefficients.csv with its confidence.
-- Coal and coke are per tonne and heat per GJ (the units the plants' meters use).
INSERT INTO coefficients VALUES
  ('electricity_calorific', 'electricity', 'kWh', 0.1229, 'GB/T 2589-2020 Annex A, 当量值', 'confirmed-from-source'),
  ('raw_coal', 'raw_coal', 't', 714.3, 'GB/T 2589 Table A.1 (0.7143 kgce/kg)', 'secondary-reproduction'),
  ('coke', 'coke', 't', 971.4, 'GB/T 2589 Table A.1 (0.9714 kgce/kg)', 'secondary-reproduction'),
  ('natural_gas_gasfield', 'natural_gas', 'm3', 1.2143, 'GB/T 2589 Table A.1, gas-field gas', 'secondary-reproduction'),
  ('natural_gas_oilfield', 'natural_gas', 'm3', 1.3300, 'GB/T 2589 Table A.1, oil-field gas', 'secondary-reproduction'),
  ('heat', 'heat', 'GJ', 34.12, 'GB/T 2589 Table A.1 (0.03412 kgce/MJ)', 'secondary-reproduction');

CREATE TABLE quotas (
  product            text NOT NULL,
  indicator          text NOT NULL,
  unit               text NOT NULL,
  level1_advanced    double precision NOT NULL,
  level2_new_build   double precision NOT NULL,
  level3_limit       double precision NOT NULL,
  standard           text NOT NULL,
  confidence         text NOT NULL,
  PRIMARY KEY (product, indicator)
);

-- Unit-product comprehensive energy consumption quotas (kgce/t), from
-- shared/reference/quotas.csv (transcriptions of the standards' tables).
INSERT INTO quotas VALUES
  ('calcium_carbide', 'kgce_per_t', 'kgce/t', 805, 823, 940, 'GB 21343-2023 表1', 'secondary-transcription'),
  ('methanol', 'kgce_per_t', 'kgce/t', 1380, 1400, 1800, 'GB 29436-2023 表1 (烟煤制甲醇)', 'secondary-transcription'),
  ('coke', 'kgce_per_t', 'kgce/t', 110, 110, 135, 'GB 21342-2025 表1 (顶装焦炉)', 'secondary-transcription'),
  ('ferrosilicon', 'kgce_per_t', 'kgce/t', 1700, 1770, 1850, 'GB 21341-2022 表1', 'secondary-transcription'),
  ('aluminium', 'kgce_per_t', 'kgce/t', 1670, 1680, 1720, 'GB 21346-2022 表1', 'secondary-transcription'),
  ('cement_clinker', 'kgce_per_t', 'kgce/t', 100, 107, 117, 'GB 16780-2021 表2', 'secondary-transcription');

CREATE TABLE meters (
  id             serial PRIMARY KEY,
  gateway_id     text NOT NULL REFERENCES gateways (id),
  code           text NOT NULL,
  site_id        integer NOT NULL,
  enterprise_id  text NOT NULL,
  carrier        text NOT NULL,
  unit           text NOT NULL,
  role           text NOT NULL CHECK (role IN ('consumed', 'exported', 'product_output', 'it_load', 'total_facility')),
  kind           text NOT NULL CHECK (kind IN ('register', 'interval')),
  multiplier     double precision NOT NULL DEFAULT 1 CHECK (multiplier > 0),
  rollover       double precision CHECK (rollover > 0),
  coefficient    text REFERENCES coefficients (id),
  product        text,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (gateway_id, code),
  FOREIGN KEY (site_id, enterprise_id) REFERENCES sites (id, enterprise_id) ON UPDATE CASCADE,
  CHECK (role <> 'product_output' OR product IS NOT NULL)
);
CREATE INDEX meters_site ON meters (site_id);
CREATE INDEX meters_enterprise ON meters (enterprise_id);

-- Row-level security: FORCE so that even the owner is filtered; one policy per table.
ALTER TABLE enterprises ENABLE ROW LEVEL SECURITY;
ALTER TABLE enterprises FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON enterprises USING (nxem_visible(id));
ALTER TABLE sites ENABLE ROW LEVEL SECURITY;
ALTER TABLE sites FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON sites USING (nxem_visible(enterprise_id));
ALTER TABLE gateways ENABLE ROW LEVEL SECURITY;
ALTER TABLE gateways FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON gateways USING (nxem_visible(enterprise_id));
ALTER TABLE meters ENABLE ROW LEVEL SECURITY;
ALTER TABLE meters FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON meters USING (nxem_visible(enterprise_id));

GRANT SELECT ON enterprises, sites, gateways, meters, coefficients, quotas
  TO nxem_ingest, nxem_portal, nxem_inspector;
