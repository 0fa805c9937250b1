"""``simulate`` commands: run a scenario, generate load, generate a fleet (Typer sub-app).

Mounted by ``ops/cli.py`` as ``nxem simulate``; also ``python -m simulators``. Settings are
built here, once, from the environment (see ``settings.ENV_VARS``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nxem.errors import NxemError
from simulators.fleet import fleet_document
from simulators.load import LoadConfig, load_fleet_document, run_load
from simulators.run import run_scenario, write_truth
from simulators.scenario import TimeMode, dump_scenario, load_scenario
from simulators.settings import ENV_VARS, load_settings

_ENV_HELP = "Environment variables:\n\n" + "\n\n".join(f"{k}: {v}" for k, v in ENV_VARS.items())

simulate_app = typer.Typer(
    help="Simulated meter gateways: scenarios with ground truth, load generation, fleet generation.",
    epilog=_ENV_HELP, no_args_is_help=True, rich_markup_mode=None,
)
console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


def _fail(err: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {err}")
    return typer.Exit(code=1)


@simulate_app.command(epilog=_ENV_HELP)
def run(
    scenario: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="scenario YAML file")],
    mode: Annotated[Optional[str], typer.Option(help="realtime | accelerated | backfill (default: the file's)")] = None,  # noqa: UP007
    speed: Annotated[Optional[float], typer.Option(help="accelerated: simulated seconds per wall second")] = None,  # noqa: UP007
    truth: Annotated[Optional[Path], typer.Option(help="write the ground truth JSON here")] = None,  # noqa: UP007
) -> None:
    """Publish a scenario's readings (QoS 1, waits for every PUBACK) and write its ground truth."""
    try:
        settings = load_settings()
        sc = load_scenario(scenario)
        chosen: TimeMode = sc.simulation.mode if mode is None else mode  # type: ignore[assignment]
        truth_path = truth or scenario.with_suffix(".truth.json")
        with _progress() as bar:
            task = bar.add_task(f"{sc.name} ({chosen})", total=sc.simulation.ticks)
            result = run_scenario(sc, settings, mode=chosen, speed=speed, truth_path=truth_path,
                                  progress=lambda done, _total: bar.update(task, completed=done))
    except (NxemError, ValueError, OSError) as err:
        raise _fail(err) from err
    console.print(f"published {result.messages} messages, {result.readings} readings "
                  f"({result.duplicate_messages} duplicates, {result.malformed_messages} malformed); "
                  f"{len(result.alerts)} expected alerts; truth: {truth_path}")


@simulate_app.command(epilog=_ENV_HELP)
def load(
    gateways: Annotated[int, typer.Option(help="simulated gateways")] = 1000,
    meters: Annotated[int, typer.Option(help="meters per gateway = readings per message")] = 100,
    rate: Annotated[float, typer.Option(help="readings per second to hold")] = 100_000.0,
    duration: Annotated[float, typer.Option(help="seconds")] = 30.0,
    connections: Annotated[int, typer.Option(help="MQTT connections (paho clients) in this process")] = 4,
    registry_out: Annotated[Optional[Path], typer.Option(help="write the load fleet's registry YAML and exit")] = None,  # noqa: UP007
    json_out: Annotated[Optional[Path], typer.Option(help="write the result as JSON")] = None,  # noqa: UP007
) -> None:
    """Hold a fixed rate of readings/s; report achieved rate, publish errors and CPU use."""
    cfg = LoadConfig(gateways=gateways, meters=meters, rate=rate, duration_s=duration, connections=connections)
    if registry_out is not None:
        registry_out.write_text(dump_scenario(load_fleet_document(cfg)), encoding="utf-8")
        console.print(f"registry of {gateways} gateways × {meters} meters written to {registry_out}")
        return
    try:
        settings = load_settings()
        with _progress() as bar:
            task = bar.add_task(f"load {rate:,.0f} readings/s", total=int(rate / meters * duration) * meters)
            result = run_load(cfg, settings, progress=lambda done, _t: bar.update(task, completed=done))
    except (NxemError, ValueError) as err:
        raise _fail(err) from err
    console.print(f"achieved {result.achieved_rate:,.0f} readings/s (target {result.target_rate:,.0f}); "
                  f"{result.messages_acked}/{result.messages_sent} messages acknowledged; "
                  f"publish errors {result.publish_errors} {result.errors or ''}; "
                  f"CPU {result.cpu_s:.1f} s over {result.elapsed_s:.1f} s = {result.cpu_fraction:.0%} of a core")
    if json_out is not None:
        json_out.write_text(json.dumps(asdict(result), indent=1), encoding="utf-8")
    if result.publish_errors:
        raise typer.Exit(code=2)


@simulate_app.command(epilog=_ENV_HELP)
def fleet(
    output: Annotated[Path, typer.Option("-o", "--output", help="scenario YAML to write")],
    data_centres: Annotated[int, typer.Option(help="data-centre enterprises")] = 5,
    plants: Annotated[int, typer.Option(help="plant enterprises (products rotate)")] = 6,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same fleet)")] = 0,
    duration: Annotated[str, typer.Option(help="simulated span ending now, e.g. 7d, 1y")] = "7d",
    interval: Annotated[str, typer.Option(help="reporting interval")] = "15m",
) -> None:
    """Generate a scenario for a fleet of any size (valid USCCs, all cities and products)."""
    doc = fleet_document(data_centres, plants, seed, duration, interval)
    output.write_text(dump_scenario(doc), encoding="utf-8")
    console.print(f"{data_centres} data centres and {plants} plants written to {output}")


@simulate_app.command()
def truth(
    scenario: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="scenario YAML file")],
    output: Annotated[Path, typer.Option("-o", "--output", help="ground truth JSON to write")],
) -> None:
    """Compute a scenario's ground truth without publishing anything (dry run)."""
    from simulators.generate import Publish, Reconnect, generate
    from simulators.truth import TruthBuilder

    sc = load_scenario(scenario, now=datetime.now(timezone.utc))
    builder = TruthBuilder(sc)
    for _, events in generate(sc):
        for ev in events:
            if isinstance(ev, Publish):
                builder.record(ev)
            elif isinstance(ev, Reconnect):
                builder.reconnect(ev.count)
    write_truth(builder.finish(), output)
    console.print(f"truth written to {output}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    simulate_app()
