#!/bin/sh
# Entrypoint of the nxem image: one sub-command per service.
#   collector | worker | portal | migrate | help | <any command>
# The collector and the worker bind /metrics to 127.0.0.1 only (collector/__main__.py,
# stream/__main__.py). socat relays it on 0.0.0.0 so Prometheus, the compose healthcheck and the
# Kubernetes probes can reach it: collector 9201 -> 127.0.0.1:$NXEM_COLLECTOR_METRICS_PORT,
# worker 9202 -> 127.0.0.1:$NXEM_WORKER_METRICS_PORT. Remove the relay once the bind address
# is a setting.
set -eu

relay() {
    # $1 loopback port of the process, $2 port exposed on every interface
    socat -lf /dev/stderr "TCP-LISTEN:$2,fork,reuseaddr" "TCP:127.0.0.1:$1" &
}

cmd="${1:-help}"
case "$cmd" in
    collector)
        relay "${NXEM_COLLECTOR_METRICS_PORT:-9101}" 9201
        exec python -m collector ;;
    worker)
        relay "${NXEM_WORKER_METRICS_PORT:-9102}" 9202
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
