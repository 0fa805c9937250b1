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


@app.command("config-doc")
def config_doc() -> None:
    """Regenerate docs/configuration.md from the settings classes."""
    from nxem.configdoc import DOC_PATH, write

    write()
    typer.echo(f"wrote {DOC_PATH}")
