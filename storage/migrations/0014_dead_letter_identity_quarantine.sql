-- Replay-stable dead-letter identity, and a quarantine for what cannot be stored at all.
-- Same on the TimescaleDB path (plain tables: no override in sql_timescale/).
--
-- 1. A dead letter's fingerprint was sha256 over every field including received_at, so a
--    replayed readings topic re-created the worker's dead letters (conflicting_duplicate,
--    contract_invalid) with a new received_at and a new row. Its identity is now what it says
--    and where it came from -- stage, reason code, reason, source (an MQTT topic, or a Kafka
--    topic/partition@offset), enterprise, gateway, original bytes -- not when it was seen.
--    This function is the one definition: storage/ingest.py inserts through it and the
--    backfill below uses it. Text is never NUL (PostgreSQL text cannot hold it), so NUL
--    separates the fields unambiguously; 0xFF (never in UTF-8) stands for NULL.
SET LOCAL ROLE nxem_owner;

CREATE FUNCTION nxem_dead_letter_fingerprint(stage text, reason_code text, reason text, source text,
                                             enterprise_id text, gateway_id text, original bytea)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT sha256(convert_to(stage, 'UTF8') || '\x00'::bytea || convert_to(reason_code, 'UTF8') || '\x00'::bytea
                || convert_to(reason, 'UTF8') || '\x00'::bytea || convert_to(source, 'UTF8') || '\x00'::bytea
                || coalesce(convert_to(enterprise_id, 'UTF8'), '\xff'::bytea) || '\x00'::bytea
                || coalesce(convert_to(gateway_id, 'UTF8'), '\xff'::bytea) || '\x00'::bytea || original)
$$;
REVOKE ALL ON FUNCTION nxem_dead_letter_fingerprint(text, text, text, text, text, text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nxem_dead_letter_fingerprint(text, text, text, text, text, text, bytea) TO nxem_ingest;

-- Existing rows take the new fingerprint, so a replay after the upgrade adds nothing either.
-- Rows that only differed by received_at (the duplicates a replay made) now share an
-- identity: the first keeps it, the others keep their old fingerprint (history is not deleted).
-- As the migrating superuser: the owner is subject to the table's forced row-level security.
RESET ROLE;
UPDATE dead_letters d SET fingerprint = n.fp
FROM (SELECT DISTINCT ON (fp) id, fp
      FROM (SELECT id, nxem_dead_letter_fingerprint(stage, reason_code, reason, source, enterprise_id,
                                                    gateway_id, original) AS fp
            FROM dead_letters) x
      ORDER BY fp, id) n
WHERE d.id = n.id AND d.fingerprint IS DISTINCT FROM n.fp;
COMMENT ON COLUMN dead_letters.fingerprint IS
  'nxem_dead_letter_fingerprint(...): identity without received_at (migration 0014); a replay adds nothing';
SET LOCAL ROLE nxem_owner;

-- 2. Quarantine: a record the worker could not store, not even as a dead letter (the database
--    refused it: a value a column cannot hold, a constraint), kept with where it came from so
--    the partition can move on and an operator can look at it. kafka_partition/kafka_offset are
--    NULL for something the worker computed itself (an alert transition it could not store).
--    Only operators and inspectors read it: it may hold any tenant's raw bytes, so no tenant
--    role is granted anything.
CREATE TABLE quarantine (
  id              bigserial PRIMARY KEY,
  topic           text NOT NULL,
  kafka_partition integer,
  kafka_offset    bigint,
  reason_code     text NOT NULL,
  reason          text NOT NULL,
  original        bytea NOT NULL,
  quarantined_at  timestamptz NOT NULL DEFAULT now(),
  fingerprint     bytea NOT NULL UNIQUE  -- nxem_quarantine_fingerprint: a replay adds nothing
);
CREATE INDEX quarantine_at ON quarantine (quarantined_at DESC);

-- Identity of a quarantined record: the Kafka record (topic, partition, offset) and its bytes.
CREATE FUNCTION nxem_quarantine_fingerprint(topic text, kafka_partition integer, kafka_offset bigint,
                                            original bytea)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT sha256(convert_to(topic, 'UTF8') || '\x00'::bytea
                || coalesce(int4send(kafka_partition), '\xff'::bytea) || '\x00'::bytea
                || coalesce(int8send(kafka_offset), '\xff'::bytea) || '\x00'::bytea || original)
$$;
REVOKE ALL ON FUNCTION nxem_quarantine_fingerprint(text, integer, bigint, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nxem_quarantine_fingerprint(text, integer, bigint, bytea) TO nxem_ingest;

GRANT SELECT, INSERT ON quarantine TO nxem_ingest;
GRANT USAGE ON SEQUENCE quarantine_id_seq TO nxem_ingest;
GRANT SELECT ON quarantine TO nxem_inspector;
