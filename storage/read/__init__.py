"""The one read API for stored data: what the portal, the daily checks, the worker's rebuild,
reports and the benchmarks call.

* ``storage.read.energy``: quantities per meter, a site's tce per period (quarter-hour to
  calendar year, rolling 12 months), PUE, per-site totals -- from ``energy_sql``, the only SQL
  implementation of ``analytics.energy_definition`` (register arithmetic, the tce boundary);
* ``storage.read.readings``: raw readings, downsampled charts, first and last reading;
* ``storage.read.alerts``: the alert board, one alert and its transitions, acknowledgement,
  the active alerts a worker restores;
* ``storage.read.registry``: enterprises, sites, meters, one site's registry rows.

Every function takes a psycopg connection whose transaction the caller has bound to a tenant
(``storage.rls.tenant_transaction``, ``portal.db.Database.tenant``) or the worker's
``nxem_ingest`` session: queries read the tenant views (``v_readings``, ``v_rollup_*``) and
tables under row-level security, and filter by what is asked, never by who asks. Errors are
ours (``storage.errors``, ``nxem.errors``); the HTTP layer maps them to statuses.
"""
