"""The ``nxem`` command line: services, database, registry, pipeline processes, simulators, demo.

Sub-commands import their packages lazily so ``nxem --help`` stays fast and a missing
optional part names itself instead of breaking every command.
"""

from __future__ import annotations

from pathlib import Path

import typer

from nxem.services.cli import services_app
from simulators.cli import simulate_app

app = typer.Typer(
    help="Ningxia key energy-using units monitoring pipeline. Settings come from NXEM_* "
    "environment variables (docs/configuration.md lists them all).",
    no_args_is_help=True,
)
app.add_typer(services_app, name="services", help="Start/stop/status of local Mosquitto, Kafka, PostgreSQL")
app.add_typer(simulate_app, name="simulate", help="Meter gateway simulators")
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
registry_app = typer.Typer(help="Registry of enterprises, sites, gateways, meters", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(registry_app, name="registry")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the versioned SQL migrations (safe to run twice)."""
    from nxem.services import postgres as pg
    from nxem.services.settings import ServiceSettings
    from storage.migrate import migrate

    applied = migrate(pg.admin_dsn(ServiceSettings()))
    typer.echo(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")


@registry_app.command("load")
def registry_load(path: Path) -> None:
    """Load (upsert) a registry or scenario YAML file into the database."""
    import psycopg

    from nxem.services import postgres as pg
    from nxem.services.settings import ServiceSettings
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


@app.command("demo")
def demo(
    scenario: Path = typer.Option(Path("examples/scenarios/demo.yaml"), help="scenario to simulate"),
    duration_s: float = typer.Option(0, help="stop after this many seconds (0 = until Ctrl-C)"),
) -> None:
    """Start everything locally and run a simulated Ningxia fleet; prints where to look."""
    from nxem.demo import run_demo

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
    from nxem.services import mosquitto
    from nxem.services import postgres as pg
    from nxem.services.settings import ServiceSettings

    s = ServiceSettings()
    with psycopg.connect(pg.admin_dsn(s)) as conn:
        gateways = gateway_accounts(conn)
    files = write_access(mosquitto.mosquitto_dir(s), s.resolved_data_dir() / "secrets" / "mqtt", gateways, collector)
    typer.echo(f"wrote {files.passwd} and {files.acl} ({files.users} users); "
               f"passwords in {s.resolved_data_dir() / 'secrets' / 'mqtt'}")
    if reload:
        mosquitto.reload_mosquitto(s)
        typer.echo("broker reloaded: anonymous access is off")


@app.command("config-doc")
def config_doc() -> None:
    """Regenerate docs/configuration.md from the settings classes."""
    from nxem.configdoc import DOC_PATH, write

    write()
    typer.echo(f"wrote {DOC_PATH}")
