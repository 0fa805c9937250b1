#!/bin/sh
# Entrypoint of the nxem image: one sub-command per service.
#   collector | worker | portal | migrate | help | <any command>
# The collector and the worker serve /metrics on $NXEM_METRICS_HOST (default 127.0.0.1):
# compose and Kubernetes set it to 0.0.0.0 so Prometheus can scrape 9101 / 9102.
set -eu

cmd="${1:-help}"
case "$cmd" in
    collector)
        exec python -m collector ;;
    worker)
        exec python -m stream ;;
    portal)
        exec python -m portal ;;
    migrate)
        # Admin password: $NXEM_DATA_DIR/secrets/pg-admin.password (no *_FILE override exists);
        # login roles: NXEM_PG_INGEST_PASSWORD_FILE, NXEM_PG_PORTAL_PASSWORD_FILE,
        # NXEM_PG_INSPECTOR_PASSWORD_FILE.
        exec nxem db migrate ;;
    help)
        echo "usage: collector | worker | portal | migrate | <command, e.g. nxem registry load FILE>"
        exec nxem --help ;;
    *)
        exec "$@" ;;
esac
