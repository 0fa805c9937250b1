-- Transitions the workers did not publish themselves (an inspector's acknowledgement written by
-- the portal) wait here for a worker to publish them on the alerts topic, so the topic carries
-- every transition kind (opened, updated, cleared, acknowledged). The workers write the ones
-- they already published with published = true; anything else defaults to false.
-- Existing rows count as published (added with DEFAULT true: no table rewrite), new rows not.
SET LOCAL ROLE nxem_owner;

ALTER TABLE alert_transitions ADD COLUMN published boolean NOT NULL DEFAULT true;
ALTER TABLE alert_transitions ALTER COLUMN published SET DEFAULT false;
CREATE INDEX alert_transitions_unpublished ON alert_transitions (id) WHERE NOT published;
GRANT UPDATE (published) ON alert_transitions TO nxem_ingest;
