"""PostgreSQL/TimescaleDB storage: migrations, registry, idempotent ingest, reads, tenancy.

Entry points (see docs/registry.md and the module docstrings):
``storage.migrate.migrate``, ``storage.roles.dsn_for``, ``storage.registry`` (load_routing,
load_sites, load_meters, upsert_registry), ``storage.ingest.write_batch``, ``storage.read`` (the
one read API), ``storage.rls.tenant_transaction``.
"""
