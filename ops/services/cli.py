"""``nxem services up|down|status``: the Typer sub-app over :mod:`ops.services.runner`."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from nxem.errors import ServiceError
from ops.services import runner
from ops.services.settings import ServiceSettings

services_app = typer.Typer(help="Local Mosquitto, Kafka and PostgreSQL (no Docker).",
                           no_args_is_help=True)
_console = Console()
_err = Console(stderr=True)

OnlyOption = Annotated[str | None, typer.Option(
    "--only", help="Comma-separated subset: postgres,mosquitto,kafka (default: all).")]


def _settings() -> ServiceSettings:
    try:
        return ServiceSettings()
    except ValidationError as err:
        _err.print(f"[red]invalid NXEM_ setting:[/red] {err}")
        raise typer.Exit(2) from err


def _fail(err: ServiceError) -> typer.Exit:
    _err.print(f"[red]error:[/red] {err}", markup=True, highlight=False)
    return typer.Exit(1)


@services_app.command()
def up(only: OnlyOption = None) -> None:
    """Install where needed, start, and wait until ready (idempotent)."""
    settings = _settings()
    try:
        results = runner.up(settings, runner.parse_only(only))
    except ServiceError as err:
        raise _fail(err) from err
    table = Table(title=f"nxem services up  (data: {settings.resolved_data_dir()})")
    for column in ("service", "action", "pid", "endpoint", "seconds"):
        table.add_column(column)
    for r in results:
        action = "[green]started[/green]" if r.started else "already running"
        table.add_row(r.name, action, str(r.status.pid), r.status.endpoint, f"{r.seconds:.2f}")
    _console.print(table)


@services_app.command()
def down(only: OnlyOption = None) -> None:
    """Stop the services by pid (SIGTERM, SIGKILL after a timeout)."""
    settings = _settings()
    try:
        stopped = runner.down(settings, runner.parse_only(only))
    except ServiceError as err:
        raise _fail(err) from err
    for name, was_running in stopped.items():
        _console.print(f"{name}: {'stopped' if was_running else 'was not running'}")


@services_app.command()
def status(only: OnlyOption = None) -> None:
    """Show pid, state and endpoint of each service (exit code 3 if any is down)."""
    settings = _settings()
    try:
        rows = runner.status(settings, runner.parse_only(only))
    except ServiceError as err:
        raise _fail(err) from err
    table = Table(title="nxem services")
    for column in ("service", "state", "pid", "endpoint"):
        table.add_column(column)
    for s in rows:
        state = "[green]running[/green]" if s.running else "[red]stopped[/red]"
        table.add_row(s.name, state, str(s.pid or "-"), s.endpoint)
    _console.print(table)
    if not all(s.running for s in rows):
        raise typer.Exit(3)
