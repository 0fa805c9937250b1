-- Alerts (ThingsBoard-style: identity alert_key = source_kind:source_id:rule, at most one
-- active row per key), their append-only transitions, and dead letters kept for inspection.
SET LOCAL ROLE nxem_owner;

CREATE TABLE alerts (
  id             bigserial PRIMARY KEY,
  alert_key      text NOT NULL,
  source_kind    text NOT NULL CHECK (source_kind IN ('site', 'meter', 'enterprise')),
  source_id      bigint NOT NULL,
  enterprise_id  text NOT NULL REFERENCES enterprises (id),
  rule           text NOT NULL,
  severity       text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
  started_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL,
  value          double precision,
  threshold      double precision,
  details        jsonb NOT NULL DEFAULT '{}',
  acked_at       timestamptz,
  acked_by       text,
  cleared_at     timestamptz
);
-- One active alert per identity: a repeated trigger updates it instead of adding a row.
CREATE UNIQUE INDEX alerts_one_active ON alerts (alert_key) WHERE cleared_at IS NULL;
CREATE INDEX alerts_enterprise_started ON alerts (enterprise_id, started_at DESC);
CREATE INDEX alerts_source ON alerts (source_kind, source_id) WHERE cleared_at IS NULL;
CREATE INDEX alerts_started ON alerts (started_at DESC);

CREATE TABLE alert_transitions (
  id             bigserial PRIMARY KEY,
  alert_key      text NOT NULL,
  kind           text NOT NULL CHECK (kind IN ('opened', 'updated', 'cleared', 'acknowledged')),
  at             timestamptz NOT NULL,
  enterprise_id  text NOT NULL REFERENCES enterprises (id),
  source_kind    text NOT NULL,
  source_id      bigint NOT NULL,
  rule           text NOT NULL,
  severity       text NOT NULL,
  value          double precision,
  threshold      double precision,
  details        jsonb NOT NULL DEFAULT '{}',
  recorded_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (alert_key, kind, at)  -- a replayed Kafka poll does not add a transition twice
);
CREATE INDEX alert_transitions_enterprise_at ON alert_transitions (enterprise_id, at DESC);

CREATE TABLE dead_letters (
  id             bigserial PRIMARY KEY,
  stage          text NOT NULL,
  reason_code    text NOT NULL,
  reason         text NOT NULL,
  received_at    timestamptz NOT NULL,
  source         text NOT NULL,
  original       bytea NOT NULL,
  enterprise_id  text,  -- NULL when it could not be attributed: only inspectors see those
  gateway_id     text,
  stored_at      timestamptz NOT NULL DEFAULT now(),
  -- sha256 over every field (storage/ingest.py): a replayed dead-letter topic adds nothing
  fingerprint    bytea NOT NULL UNIQUE
);
CREATE INDEX dead_letters_enterprise ON dead_letters (enterprise_id, received_at DESC);

ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON alerts USING (nxem_visible(enterprise_id));
ALTER TABLE alert_transitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_transitions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON alert_transitions USING (nxem_visible(enterprise_id));
ALTER TABLE dead_letters ENABLE ROW LEVEL SECURITY;
ALTER TABLE dead_letters FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON dead_letters USING (enterprise_id IS NOT NULL AND nxem_visible(enterprise_id)
                                           OR pg_has_role(current_user, 'nxem_all_tenants', 'MEMBER')
                                           OR coalesce(current_setting('app.role', true) = 'inspector', false));

GRANT SELECT, INSERT, UPDATE ON alerts TO nxem_ingest;
GRANT SELECT, INSERT ON alert_transitions, dead_letters TO nxem_ingest;
GRANT USAGE ON SEQUENCE alerts_id_seq, alert_transitions_id_seq, dead_letters_id_seq TO nxem_ingest;
GRANT SELECT ON alerts, alert_transitions, dead_letters TO nxem_portal, nxem_inspector;
-- The portal acknowledges alerts of its tenant (RLS applies to the UPDATE and the INSERT).
GRANT UPDATE (acked_at, acked_by) ON alerts TO nxem_portal;
GRANT INSERT ON alert_transitions TO nxem_portal;
GRANT USAGE ON SEQUENCE alert_transitions_id_seq TO nxem_portal;
