"""Scale-out: the pipeline with more stream workers or collectors, on each storage backend.

    .venv/bin/python -m bench.scaleout --rate 50000 --duration 30 [--gateways 1000 --meters 100]
                                       [--gateways-per-site 10] [--backends native,timescale]
                                       [--shapes 1x1,2x1,4x1,1x2]

A shape is WORKERSxCOLLECTORS: that many stream workers in one consumer group and that many
collectors (one MQTT shared subscription when more than one). Each backend × shape is one
``bench.pipeline.run`` at the same rate, one after the other, each on a fresh ``pipeline()`` (its
own database migrated for the backend, its own topics with max(6, workers) partitions), without
the alert probe. The fleet has 10 gateways per site (100 sites by default; bench.pipeline keeps
the generator's 100): Kafka records are keyed by site, so a group spreads sites, not readings,
and a few sites hash unevenly onto the partitions. A backend the server cannot run is skipped
with the reason. Prints each run's lines, then one table: offered and stored readings/s, p99
reading->stored, lost, CPU cores of every process (load generator included) and CPU µs per
stored reading. Figures, never pass/fail; it exits non-zero only when a run did not store
exactly the acknowledged readings.

On one machine more processes add no cores: the table shows what a worker or collector costs
per reading and whether the group spreads the work, not the throughput of a real cluster.
"""

from __future__ import annotations

import argparse
import threading

from bench.pipeline import RunResult, add_pipeline_args, fail_on_loss, run, timescale_missing
from ops.services import ServiceSettings, ensure_up
from storage.migrate import Backend

BACKENDS: tuple[Backend, ...] = ("native", "timescale")


def parse_shape(text: str) -> tuple[int, int]:
    """"4x1" -> (4 workers, 1 collector)."""
    workers, sep, collectors = text.strip().lower().partition("x")
    if not sep or not workers.isdigit() or not collectors.isdigit() or int(workers) < 1 or int(collectors) < 1:
        raise argparse.ArgumentTypeError(f"shape {text!r} is not WORKERSxCOLLECTORS, e.g. 2x1")
    return int(workers), int(collectors)


def parse_backends(text: str) -> list[Backend]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    bad = [b for b in names if b not in BACKENDS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"backends must be among {', '.join(BACKENDS)}: {text!r}")
    return [b for b in BACKENDS if b in names]


def table(results: list[RunResult]) -> str:
    rows = ["| backend | workers | collectors | offered/s | stored/s while loading | p99 | lost "
            "| cpu total cores | µs per reading |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        p99 = f"{r.p99_s:.3f} s" if r.p99_s is not None else "-"
        rows.append(f"| {r.backend} | {r.workers} | {r.collectors} | {r.offered_per_s:,.0f} "
                    f"| {r.stored_per_s_loading:,.0f} | {p99} | {r.lost:,} | {r.cores['total']:.2f} "
                    f"| {r.us_per_reading['total']:.1f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=50_000)
    add_pipeline_args(ap, backend=False, gateways_per_site=10)
    ap.add_argument("--backends", type=parse_backends, default=list(BACKENDS), help="comma-separated")
    ap.add_argument("--shapes", type=lambda t: [parse_shape(s) for s in t.split(",")],
                    default=[(1, 1), (2, 1), (4, 1), (1, 2)], help="comma-separated WORKERSxCOLLECTORS")
    a = ap.parse_args()
    settings = ServiceSettings()
    ensure_up(settings)
    results: list[RunResult] = []
    for backend in a.backends:
        if backend == "timescale" and (why := timescale_missing(settings)):
            print(f"# timescale skipped: {why}")
            continue
        for workers, collectors in a.shapes:
            results.append(run(a.rate, a.duration, a.gateways, a.meters, warmup_s=a.warmup, alert_probe=False,
                               workers=workers, collectors=collectors, backend=backend,
                               gateways_per_site=a.gateways_per_site))
            print()
    print(f"# bench.scaleout  rate={a.rate:,.0f} readings/s  duration={a.duration:g}s  gateways={a.gateways}  "
          f"meters/message={a.meters}  gateways/site={a.gateways_per_site}; cpu of every process, "
          f"load generator included")
    print(table(results))
    fail_on_loss(results)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
