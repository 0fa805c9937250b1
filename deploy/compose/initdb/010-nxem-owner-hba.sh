#!/bin/sh
# Runs once, when the postgres/timescaledb image initialises its data folder
# (/docker-entrypoint-initdb.d): puts two lines before every other one in pg_hba.conf so that
# no client can connect as the schema owner nxem_owner. That role has LOGIN only because
# TimescaleDB runs its policies as the hypertables' owner in background workers (which do not
# pass through pg_hba), and it has no password (storage/roles.py, migration 0013).
# For a data folder initialised before this script existed, add the same two lines by hand and
# reload (`SELECT pg_reload_conf()`); `nxem db migrate` warns while they are missing.
set -eu
hba="$PGDATA/pg_hba.conf"
if ! grep -q '^local *all *nxem_owner *reject' "$hba"; then
    {
        echo '# nxem: nobody connects as the schema owner (deploy/compose/initdb/010-nxem-owner-hba.sh)'
        echo 'local   all   nxem_owner   reject'
        echo 'host    all   nxem_owner   all   reject'
        cat "$hba"
    } > "$hba.nxem"
    mv "$hba.nxem" "$hba"
fi
