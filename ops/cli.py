"""The ``nxem`` command line: services, database, registry, pipeline processes, simulators, demo.

Sub-commands import their packages lazily so ``nxem worker`` loads the worker and nothing else
(not the simulators, the service runner, the collector or the portal), ``nxem --help`` stays fast
and a missing optional part names itself instead of breaking every command. The two command
groups of other packages are added by ``main`` only when asked for (``LAZY_GROUPS``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Final

import typer

app = typer.Typer(
    help="Ningxia key energy-using units monitoring pipeline. Settings come from NXEM_* "
    "environment variables (docs/configuration.md lists them all).",
    no_args_is_help=True,
)
#: Command groups defined in other packages: name -> (module, Typer attribute, help).
LAZY_GROUPS: Final = {
    "services": ("ops.services.cli", "services_app", "Start/stop/status of local Mosquitto, Kafka, PostgreSQL"),
    "simulate": ("simulators.cli", "simulate_app", "Meter gateway simulators"),
}
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
registry_app = typer.Typer(help="Registry of enterprises, sites, gateways, meters", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(registry_app, name="registry")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the versioned SQL migrations (safe to run twice)."""
    from ops.services import postgres as pg
    from ops.services.settings import ServiceSettings
    from storage.migrate import migrate

    settings = ServiceSettings()
    applied = migrate(pg.admin_dsn(settings), backend=settings.db_backend,
                      secrets_dir=settings.resolved_data_dir() / "secrets")
    typer.echo(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")


@db_app.command("maintain")
def db_maintain(
    ahead_days: int = typer.Option(7, min=1, help="create daily partitions of readings this many UTC days ahead"),
    retain_days: int = typer.Option(0, min=0, help="drop raw-reading partitions older than this many days "
                                                  "(0 = keep everything; rollups are always kept)"),
) -> None:
    """Partition upkeep on plain PostgreSQL (run daily, e.g. from cron): ahead and retention."""
    from datetime import UTC, datetime

    import psycopg

    from ops.services import postgres as pg
    from ops.services.settings import ServiceSettings
    from storage import partitions
    from storage.migrate import backend_of

    with psycopg.connect(pg.admin_dsn(ServiceSettings())) as conn:
        if backend_of(conn) != "native":
            typer.echo("TimescaleDB: chunks are created and dropped by TimescaleDB's own policies")
            return
        try:
            created, dropped = partitions.maintain(conn, datetime.now(UTC).date(), ahead_days, retain_days or None)
        except psycopg.errors.UndefinedFunction as err:
            typer.echo(f"the database is not migrated ({err.diag.message_primary}); run `nxem db migrate`", err=True)
            raise typer.Exit(1) from err
    typer.echo(f"partitions created {created}, dropped {dropped}")


@registry_app.command("load")
def registry_load(path: Path) -> None:
    """Load (upsert) a registry or scenario YAML file into the database."""
    import psycopg

    from ops.services import postgres as pg
    from ops.services.settings import ServiceSettings
    from storage.registry import load_registry_file, upsert_registry

    reg = load_registry_file(path)
    with psycopg.connect(pg.admin_dsn(ServiceSettings())) as conn:
        upsert_registry(conn, reg)
    typer.echo(f"registry loaded from {path}")


@app.command("collector")
def run_collector() -> None:
    """Run the MQTT -> Kafka collector (NXEM_COLLECTOR_* settings)."""
    from collector.__main__ import main

    main()


@app.command("worker")
def run_worker() -> None:
    """Run one stream worker of the consumer group (NXEM_WORKER_* settings)."""
    from stream.__main__ import main

    main()


@app.command("daily-checks")
def daily_checks(
    day: str | None = typer.Option(None, help="local (Asia/Shanghai) day to check now, YYYY-MM-DD (it must have "
                                              "ended; the schedule is not moved); without it: the days due, as "
                                              "the workers' job does (for a CronJob with NXEM_WORKER_DAILY_CHECKS=false)"),
) -> None:
    """Run the once-a-day checks (daily vs monthly totals, consumption anomalies).

    Alerts go to the alerts topic and the database as the workers' job does (NXEM_WORKER_*
    settings). At fleet scale run it as its own process (training an IsolationForest per meter
    takes ≈ 0.2 s of CPU: hours a day for 100 000 meters, which a worker would spend beside
    its ingest) and set NXEM_WORKER_DAILY_CHECKS=false on the workers.
    """
    from datetime import UTC, date, datetime, timedelta

    from nxem.kafka import alert_publisher, make_producer
    from storage import roles
    from stream.daily import DailyConfig, day_bounds, run_due, run_once
    from stream.settings import WorkerSettings

    now = datetime.now(UTC)
    s = WorkerSettings()
    local_day: date | None = None
    if day is not None:
        try:
            local_day = date.fromisoformat(day)
        except ValueError as err:
            raise typer.BadParameter(f"{day!r} is not a date YYYY-MM-DD", param_hint="--day") from err
        if day_bounds(local_day)[1] > now:
            raise typer.BadParameter(f"local day {local_day} has not ended yet", param_hint="--day")
    producer = make_producer(s.kafka_bootstrap, f"{s.worker_id}-daily-cli")
    dsn = roles.dsn_for("nxem_ingest", s)
    cfg = DailyConfig.from_settings(s)
    publish = alert_publisher(producer, s.topic_alerts)
    try:
        if local_day is not None:
            results = [run_once(dsn, local_day, now, cfg, publish)]
        else:
            due = run_due(dsn, now, cfg, publish, timedelta(seconds=s.worker_daily_grace_s), max_days=31)
            if due is None:
                typer.echo("another process holds the daily-checks job; nothing done")
                raise typer.Exit(0)
            results = due
    finally:
        producer.close(timeout=10)
    if not results:
        typer.echo("no local day due")
    for result in results:
        typer.echo(f"{result.local_day}: {len(result.transitions)} alert transitions")
        for e in result.transitions:
            typer.echo(f"  {e.kind:<8} {e.alert_key} value={e.value}")
        for k, v in result.summary.items():
            typer.echo(f"  {k}: {v}")


@app.command("demo")
def demo(
    scenario: Path = typer.Option(Path("examples/scenarios/demo-fleet.yaml"), help="scenario to simulate"),
    duration_s: float = typer.Option(0, help="stop after this many seconds (0 = until Ctrl-C)"),
) -> None:
    """Start everything locally and run a simulated Ningxia fleet; prints where to look."""
    from ops.demo import run_demo

    run_demo(scenario, duration_s)


@app.command("mqtt-access")
def mqtt_access(
    collector: list[str] = typer.Option(["nxem-collector-1"], help="MQTT user (= NXEM_COLLECTOR_ID) of each collector"),
    reload: bool = typer.Option(True, help="reload the local broker afterwards"),
) -> None:
    """Generate Mosquitto's password file and ACL from the registry's gateways.

    Passwords are created under <data dir>/secrets/mqtt/<user>.password when missing (give each
    gateway its file); the broker then refuses anonymous clients and lets a gateway publish only
    to nxem/v1/<its enterprise>/<itself>/readings.
    """
    import psycopg

    from collector.access import gateway_accounts, write_access
    from ops.services import mosquitto
    from ops.services import postgres as pg
    from ops.services.settings import ServiceSettings

    s = ServiceSettings()
    with psycopg.connect(pg.admin_dsn(s)) as conn:
        gateways = gateway_accounts(conn)
    files = write_access(mosquitto.mosquitto_dir(s), s.resolved_data_dir() / "secrets" / "mqtt", gateways, collector)
    typer.echo(f"wrote {files.passwd} and {files.acl} ({files.users} users); "
               f"passwords in {s.resolved_data_dir() / 'secrets' / 'mqtt'}")
    if reload:
        mosquitto.reload_mosquitto(s)
        typer.echo("broker reloaded: anonymous access is off")


@app.command("portal-user")
def portal_user(
    username: str = typer.Argument(..., help="the new user's name"),
    role: str = typer.Argument(..., help="enterprise, operator, inspector or admin (portal/roles.py)"),
    enterprise_id: str | None = typer.Argument(None, help="the enterprise of an enterprise user"),
) -> None:
    """Add a portal user as the database superuser (password from the terminal or stdin, never
    from the command line)."""
    import getpass
    import sys

    import psycopg

    from ops.services import ServiceSettings, admin_dsn
    from portal.users import UserError, create_user

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    with psycopg.connect(admin_dsn(ServiceSettings())) as conn:
        try:
            user = create_user(conn, username, password, role, enterprise_id)
        except UserError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from err
    typer.echo(f"created {user.username} ({user.role})")


@app.command("config-doc")
def config_doc() -> None:
    """Regenerate docs/configuration.md from the settings classes."""
    from ops.configdoc import DOC_PATH, write

    write()
    typer.echo(f"wrote {DOC_PATH}")


def main(argv: list[str] | None = None) -> None:
    """The ``nxem`` script: adds the command group named on the command line (all of them for
    ``--help`` or no command), then runs."""
    args = sys.argv[1:] if argv is None else argv
    first = next((a for a in args if not a.startswith("-")), None)
    for name, (module, attr, help_text) in LAZY_GROUPS.items():
        if first is None or first == name:
            app.add_typer(getattr(importlib.import_module(module), attr), name=name, help=help_text)
    app(args=args, prog_name="nxem")
