"""End-to-end benchmark: the whole pipeline on this machine at a fixed reading rate.

    .venv/bin/python -m bench.pipeline --rate 100000 --duration 60 --gateways 1000 --meters 100
                                       [--workers 1] [--collectors 1] [--backend native|timescale]

Prints, for one run on the local services (its own database, migrated for ``--backend``, and
topics with max(6, workers) partitions; ``--workers`` stream workers in one consumer group,
``--collectors`` collectors sharing one MQTT shared subscription when more than one):
* raw components measured in the same run: psycopg binary COPY rows/s into a keyed table,
  kafka-python produce and consume records/s (records the size of one gateway batch);
* the pipeline: readings/s offered and stored, nothing lost (stored == acknowledged by the
  broker), p50/p99 reading->stored (gateway send time to DB commit) and reading->alert, the
  drain time after the load stops, each process group's CPU share and CPU microseconds per
  stored reading; latency histograms and CPU are summed over all workers and collectors.
Figures, never pass/fail: see README "Measured". It exits non-zero only when the database does
not hold exactly the acknowledged readings. ``run()`` returns the figures as a ``RunResult``
for ``bench.scaleout`` and ``bench.national``.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import psycopg

from ops.services import ServiceSettings, admin_dsn, ensure_up
from storage import timescale
from storage.migrate import BackendChoice, backend_of
from tests.harness import Pipeline, Proc, create_topics, delete_topics, metric, pipeline

if TYPE_CHECKING:
    from simulators.load import LoadConfig

CLK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- process CPU accounting
def _cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and of its children it has reaped: a PostgreSQL backend that exits
    in the window moves its CPU into the postmaster's, instead of out of the group's sum."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / CLK  # utime + stime + cutime + cstime


def _pids_matching(needle: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if needle in (d / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def _pg_pids() -> list[int]:
    return [int(d.name) for d in Path("/proc").iterdir()
            if d.name.isdigit() and _comm(int(d.name)) == "postgres"]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` (VmRSS), MiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class CpuProbe:
    groups: dict[str, Callable[[], list[int]]]

    def snapshot(self) -> dict[str, float]:
        return {name: sum(_cpu_s(p) for p in pids()) for name, pids in self.groups.items()}


# ---------------------------------------------------------------- Prometheus histograms
def histogram(port: int, name: str) -> list[tuple[float, float]]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = []
    for line in body.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    return sorted(out)


def merged_histogram(ports: Sequence[int], name: str) -> list[tuple[float, float]]:
    """``name``'s cumulative bucket counts summed over the processes at ``ports`` (same buckets each)."""
    total: dict[float, float] = {}
    for port in ports:
        for le, n in histogram(port, name):
            total[le] = total.get(le, 0.0) + n
    return sorted(total.items())


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Linear interpolation inside the Prometheus bucket that holds the q-quantile."""
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_n = 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_n) / max(n - prev_n, 1e-9))
        prev_le, prev_n = le, n
    return None


# ---------------------------------------------------------------- raw components
def raw_copy(dsn: str, rows: int = 1_000_000) -> float:
    """psycopg binary COPY rows/s into a (meter_id, ts) keyed table."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    data = [(i % 1000, base + timedelta(seconds=15 * (i // 1000)), 1.0) for i in range(rows)]
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TEMP TABLE bench_copy (meter_id int, ts timestamptz, value float8, PRIMARY KEY (meter_id, ts))")
        t0 = time.perf_counter()
        with conn.cursor().copy("COPY bench_copy (meter_id, ts, value) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "timestamptz", "float8"])
            for r in data:
                cp.write_row(r)
        conn.commit()
        return rows / (time.perf_counter() - t0)


def raw_kafka(bootstrap: str, topic: str, records: int, size: int) -> tuple[float, float]:
    """kafka-python produce and consume records/s with records of ``size`` bytes."""
    from kafka import KafkaConsumer

    from nxem.kafka import make_producer

    producer = make_producer(bootstrap, "bench-raw")
    value = (b'{"bench":"' + b"x" * max(0, size - 12) + b'"}')
    t0 = time.perf_counter()
    for i in range(records):
        producer.send(topic, value=value, key=str(i % 100).encode())
    producer.flush()
    produce = records / (time.perf_counter() - t0)
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=5000)
    t0 = time.perf_counter()
    n = 0
    for _ in consumer:
        n += 1
        if n >= records:
            break
    consume = n / (time.perf_counter() - t0)
    consumer.close()
    return produce, consume


# ---------------------------------------------------------------- the pipeline run
#: Process groups in the order of the "cpu µs per stored reading" line.
US_ORDER = ("collector", "worker", "postgres", "kafka", "mosquitto", "simulator")


@dataclass(frozen=True)
class RunResult:
    """One run's figures. The measured window runs from the start of the load to fully drained;
    ``cpu_s`` holds each process group's CPU seconds in it (the load generator as "simulator")."""

    backend: str
    workers: int
    collectors: int
    target_per_s: float
    offered_per_s: float  # readings the broker acknowledged per second of the load
    stored_per_s_loading: float
    stored_per_s_drained: float
    acknowledged: int  # warm-up and alert probe included, as ``stored``
    stored: int
    lost: int
    extra: int
    p50_s: float | None  # reading -> stored, gateway send time to DB commit
    p99_s: float | None
    window_s: float
    stored_in_window: int
    cpu_s: dict[str, float]
    rss_mib: dict[str, list[float]]  # collector and worker processes at the end

    @property
    def cores(self) -> dict[str, float]:
        """Share of one core per group over the window, and their "total"."""
        out = {k: v / self.window_s for k, v in self.cpu_s.items()}
        return out | {"total": sum(out.values())}

    @property
    def us_per_reading(self) -> dict[str, float]:
        """CPU microseconds per reading stored in the window, per group and "total"."""
        out = {k: v / max(self.stored_in_window, 1) * 1e6 for k, v in self.cpu_s.items()}
        return out | {"total": sum(out.values())}


def timescale_missing(settings: ServiceSettings) -> str | None:
    """Why the local server cannot give a new database the TimescaleDB backend (None if it can)."""
    with psycopg.connect(admin_dsn(settings)) as conn:
        return timescale.unavailable_reason(conn)


def fleet_document(cfg: LoadConfig, gateways_per_site: int) -> dict[str, Any]:
    """The load fleet's registry document with its gateways regrouped ``gateways_per_site`` to a
    site (the generator groups 100): the collector keys Kafka records by site, so the sites are
    what a consumer group can spread over its partitions and workers."""
    from simulators.load import load_fleet_document

    doc = load_fleet_document(cfg)
    ent = doc["enterprises"][0]
    like = {k: v for k, v in ent["sites"][0].items() if k != "gateways"}
    gws = [g for site in ent["sites"] for g in site["gateways"]]
    ent["sites"] = [like | {"code": f"load-{i // gateways_per_site:05d}", "name": f"负载测试站点 {i // gateways_per_site}",
                            "gateways": gws[i:i + gateways_per_site]} for i in range(0, len(gws), gateways_per_site)]
    return doc


def _start(p: Pipeline, workers: int, collectors: int) -> tuple[list[Proc], list[Proc]]:
    """The run's collectors (sharing one MQTT subscription when several) and workers (one group)."""
    def name(kind: str, i: int, n: int) -> str:
        return kind if n == 1 else f"{kind}-{i + 1}"

    shared = {"NXEM_COLLECTOR_SHARED_GROUP": f"bench-{p.suffix}"} if collectors > 1 else {}
    cs = [p.start_collector(name("collector", i, collectors), **shared) for i in range(collectors)]
    ws = [p.start_worker(name("worker", i, workers)) for i in range(workers)]
    return cs, ws


STALE_STORE_BYTES = 64 * 1024 * 1024


def _warn_stale_mqtt_store(settings: ServiceSettings) -> None:
    """A large Mosquitto store means messages queued for a persistent session nobody reads (a
    collector id stopped without purging its session): the broker then persists every reading
    for it and rewrites the store every few seconds, and every figure below is low (seen: 1.2 GB,
    7.9 µs of Mosquitto CPU per reading, 66 k readings/s instead of 99 k)."""
    store = settings.resolved_data_dir() / "mosquitto" / "data" / "mosquitto.db"
    size = store.stat().st_size if store.exists() else 0
    if size > STALE_STORE_BYTES:
        print(f"WARNING: {store} holds {size / 2**20:,.0f} MiB (stale MQTT sessions?): figures will be low. "
              "Stop the services, delete it, start them again (README, Measured).")


def run(rate: float, duration_s: float, gateways: int, meters: int, *, raw: bool = False, warmup_s: float = 10.0,
        alert_probe: bool = True, workers: int = 1, collectors: int = 1, backend: BackendChoice | None = None,
        partitions: int | None = None, gateways_per_site: int = 100) -> RunResult:
    """One run on a fresh ``pipeline()`` (its own database and topics); prints its figures.
    ``backend`` None keeps NXEM_DB_BACKEND (else auto); ``partitions`` defaults to max(6, workers)."""
    from simulators.load import LoadConfig, run_load
    from simulators.settings import SimulatorSettings

    settings = ServiceSettings() if backend is None else ServiceSettings(db_backend=backend)
    ensure_up(settings)
    if settings.db_backend == "timescale" and (why := timescale_missing(settings)):
        raise SystemExit(f"bench.pipeline: NXEM_DB_BACKEND=timescale, but {why}")
    _warn_stale_mqtt_store(settings)
    partitions = partitions or max(6, workers)
    cfg = LoadConfig(gateways=gateways, meters=meters, rate=rate, duration_s=duration_s)
    print(f"# bench.pipeline  rate={rate:,.0f} readings/s  duration={duration_s:.0f}s  "
          f"gateways={gateways}  meters/message={meters}  cores={os.cpu_count()}  "
          f"workers={workers}  collectors={collectors}  partitions={partitions}  "
          f"sites={-(-gateways // gateways_per_site)}")
    with pipeline(settings, partitions=partitions) as p:
        with psycopg.connect(p.admin_dsn) as conn:
            used = backend_of(conn)
        print(f"storage backend: {used} (NXEM_DB_BACKEND={settings.db_backend})")
        if raw:
            print(f"raw  psycopg binary COPY into keyed table : {raw_copy(p.admin_dsn):>12,.0f} rows/s")
            raw_topic = f"nxem.bench-raw.{p.suffix}"
            create_topics(settings.kafka_bootstrap, [raw_topic], 3)
            try:
                produce, consume = raw_kafka(settings.kafka_bootstrap, raw_topic, 20_000, 60 * meters)
            finally:
                delete_topics(settings.kafka_bootstrap, [raw_topic])
            print(f"raw  kafka-python produce ({60 * meters} B records)  : {produce:>12,.0f} records/s "
                  f"= {produce * meters:,.0f} readings/s at {meters}/record")
            print(f"raw  kafka-python consume                 : {consume:>12,.0f} records/s "
                  f"= {consume * meters:,.0f} readings/s")
        p.register(fleet_document(cfg, gateways_per_site))
        cs, ws = _start(p, workers, collectors)
        cports, wports = [c.metrics_port for c in cs], [w.metrics_port for w in ws]
        probe = CpuProbe({
            "collector": lambda: [c.popen.pid for c in cs],
            "worker": lambda: [w.popen.pid for w in ws],
            "mosquitto": lambda: _pids_matching("mosquitto.conf"),
            "kafka": lambda: _pids_matching("kafka.Kafka"),
            "postgres": _pg_pids,
        })
        # Warm-up: the first polls build every meter's state; drain it before measuring.
        warm = run_load(LoadConfig(gateways=gateways, meters=meters, rate=rate, duration_s=warmup_s), SimulatorSettings())
        base = _drain(p, warm.messages_acked * meters, timeout_s=120.0)
        print(f"warm-up: {warm.messages_acked * meters:,} readings published and stored ({base:,})")

        hops = ("gateway_to_collector", "collector_to_poll", "poll_to_stored")
        h_prod0 = merged_histogram(cports, "nxem_collector_produce_seconds")
        inbox_max = [0.0]

        def watch_inbox() -> None:  # the fullest collector inbox seen
            while not inbox_stop.is_set():
                inbox_max[0] = max(inbox_max[0], *(metric(port, "nxem_collector_inbox_messages") or 0.0 for port in cports))
                inbox_stop.wait(0.1)

        inbox_stop = threading.Event()
        threading.Thread(target=watch_inbox, daemon=True).start()
        h_hops0 = {h: merged_histogram(wports, f"nxem_worker_{h}_seconds") for h in hops}
        h_stored0 = merged_histogram(wports, "nxem_worker_reading_to_stored_seconds")
        alert: dict[str, float | str] = {}
        prober = threading.Thread(target=_alert_probe, args=(p, duration_s / 2, alert), daemon=True)
        if alert_probe:
            prober.start()
        start: list[tuple[dict[str, float], float]] = []

        def window_opens(sent: int, planned: int) -> None:
            # at the first publish, after the generator built its payloads and connected
            if not start:
                start.append((probe.snapshot(), time.monotonic()))

        result = run_load(cfg, SimulatorSettings(), progress=window_opens)
        t_pub = time.monotonic()
        c0, t0 = start[0]
        stored_at_pub = int(p.sql("SELECT count(*) FROM readings")[0][0]) - base
        acked_readings = result.messages_acked * meters + base + int(alert.get("readings", 0))
        stored = _drain(p, acked_readings, timeout_s=max(120.0, duration_s * 3))
        t_done = time.monotonic()
        c1 = probe.snapshot()
        rss = {"collector": [rss_mib(c.popen.pid) for c in cs], "worker": [rss_mib(w.popen.pid) for w in ws]}
        if alert_probe:
            prober.join(timeout=60)
        wall = t_done - t0
        lat = _delta(merged_histogram(wports, "nxem_worker_reading_to_stored_seconds"), h_stored0)
        res = RunResult(
            backend=used, workers=workers, collectors=collectors, target_per_s=rate, offered_per_s=result.achieved_rate,
            stored_per_s_loading=stored_at_pub / (t_pub - t0), stored_per_s_drained=(stored - base) / wall,
            acknowledged=acked_readings, stored=stored, lost=max(0, acked_readings - stored),
            extra=max(0, stored - acked_readings), p50_s=quantile(lat, 0.50), p99_s=quantile(lat, 0.99),
            window_s=wall, stored_in_window=stored - base,
            cpu_s={k: c1[k] - c0[k] for k in c0} | {"simulator": result.cpu_s}, rss_mib=rss,
        )
        print(f"load published {result.readings_sent:,} readings in {t_pub - t0:.1f}s, broker acked "
              f"{result.messages_acked * meters:,} ({result.achieved_rate:,.0f}/s achieved, target {rate:,.0f}/s), "
              f"publish errors {result.publish_errors}")
        print(f"pipeline stored {stored:,} of {acked_readings:,} acknowledged readings (warm-up and alert probe "
              f"included): lost {res.lost:,}, extra {res.extra:,}")
        print(f"pipeline stored {res.stored_per_s_loading:,.0f} readings/s while the load ran; "
              f"{res.stored_per_s_drained:,.0f} readings/s from start to fully drained "
              f"(drain after the load stopped: {t_done - t_pub:.1f}s)")
        print(f"latency reading->stored p50 {res.p50_s:.3f}s  p99 {res.p99_s:.3f}s  (gateway send time to DB commit, "
              f"per gateway batch, measured window only)" if res.p50_s is not None and res.p99_s is not None
              else "latency: no samples")
        if lat and lat[-1][1]:
            print("latency histogram (share of gateway batches stored within): " + "  ".join(
                f"≤{le:g}s {n / lat[-1][1]:.3f}" for le, n in lat if le in (0.1, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0)))
        for h in hops:
            d = _delta(merged_histogram(wports, f"nxem_worker_{h}_seconds"), h_hops0[h])
            q50, q99 = quantile(d, 0.5), quantile(d, 0.99)
            if q50 is not None and q99 is not None:
                print(f"  hop {h:<22} p50 {q50:.3f}s  p99 {q99:.3f}s")
        inbox_stop.set()
        d = _delta(merged_histogram(cports, "nxem_collector_produce_seconds"), h_prod0)
        q50, q99 = quantile(d, 0.5), quantile(d, 0.99)
        if q50 is not None and q99 is not None:
            print(f"  collector MQTT receipt -> Kafka ack p50 {q50:.3f}s  p99 {q99:.3f}s; "
                  f"inbox max {inbox_max[0]:.0f} messages")
        print(f"latency reading->alert {alert.get('result', 'probe did not finish' if alert_probe else 'not probed')}")
        print(f"worker per poll: {stage_seconds(wports)}")
        if len(cs) > 1 or len(ws) > 1:  # the shared subscription and the consumer group each spread the work
            print("spread since start: collector messages in " + " / ".join(
                f"{metric(port, 'nxem_collector_messages_in_total') or 0:,.0f}" for port in cports)
                + "  worker records in " + " / ".join(
                f"{metric(port, 'nxem_worker_records_in_total') or 0:,.0f}" for port in wports))
        print("cpu share of one core over the measured window: "
              + "  ".join(f"{k}={v:.2f}" for k, v in res.cores.items()))
        us = res.us_per_reading
        print("cpu µs per stored reading: " + " ".join(f"{k}={us[k]:.1f}" for k in (*US_ORDER, "total")))
        return res


def _delta(now: list[tuple[float, float]], before: list[tuple[float, float]]) -> list[tuple[float, float]]:
    old = dict(before)
    return [(le, n - old.get(le, 0.0)) for le, n in now]


def _drain(p: Pipeline, expected: int, timeout_s: float) -> int:
    """Wait until ``expected`` readings are stored (or the time is up); returns the count."""
    deadline = time.monotonic() + timeout_s
    stored, last_print = 0, 0.0
    while time.monotonic() < deadline:
        stored = int(p.sql("SELECT count(*) FROM readings")[0][0])
        if stored >= expected:
            break
        if time.monotonic() - last_print > 10:
            print(f"  … draining: {stored:,} of {expected:,} stored")
            last_print = time.monotonic()
        time.sleep(0.5)
    return stored


def stage_seconds(ports: Sequence[int]) -> str:
    """Mean seconds per poll of the workers' stages, from their histograms' _sum/_count (summed)."""
    vals: dict[str, float] = {}
    for port in ports:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        for line in body.splitlines():
            if line and not line.startswith("#") and line.split()[0].endswith(("_sum", "_count")):
                vals[line.split()[0]] = vals.get(line.split()[0], 0.0) + float(line.split()[1])
    out = []
    for stage in ("rules", "write"):
        n = vals.get(f"nxem_worker_{stage}_seconds_count", 0.0)
        if n:
            out.append(f"{stage}={vals[f'nxem_worker_{stage}_seconds_sum'] / n * 1000:.0f}ms")
    polls = vals.get("nxem_worker_poll_readings_count", 0.0)
    if polls:
        out.append(f"polls={polls:.0f} mean_readings={vals['nxem_worker_poll_readings_sum'] / polls:,.0f}")
    return "  ".join(out)


def _alert_probe(p: Pipeline, delay_s: float, out: dict[str, float | str]) -> None:
    """During the load: register a data centre at PUE 1.3, backfill 4 h of its meters, and
    time from the PUBACK of its last message to the alert row in the database."""
    from simulators.run import run_scenario
    from simulators.scenario import data_centre_document, parse_scenario
    from simulators.settings import SimulatorSettings

    time.sleep(delay_s)
    now = datetime.now(UTC)
    start = (now - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    doc = data_centre_document("91640500MA76L8XK3A", "bench-dc", "gw-bench-dc", pue=1.3, it_kw=2000,
                               start=start, hours=4)
    doc["enterprises"][0]["sites"][0]["pue_window_hours"] = 1
    p.register(doc)
    time.sleep(2.5)  # the processes pick up the new registry version (1 s refresh in the harness)
    truth = run_scenario(parse_scenario(doc, now=start, name="bench-dc"), SimulatorSettings(), mode="backfill")
    sent = time.monotonic()  # every message of the scenario is acknowledged by the broker
    out["readings"] = truth.readings
    deadline = sent + 30
    while time.monotonic() < deadline:
        if p.sql("SELECT 1 FROM alerts WHERE rule = 'pue_above_limit'"):
            out["result"] = f"{time.monotonic() - sent:.3f}s (last reading acknowledged by the broker -> alert row committed)"
            return
        time.sleep(0.02)
    out["result"] = "no alert within 30 s"


def add_pipeline_args(ap: argparse.ArgumentParser, backend: bool = True, gateways_per_site: int = 100) -> None:
    """Options the end-to-end bench scripts share (``--backend`` unless they choose their own)."""
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--gateways", type=int, default=1000)
    ap.add_argument("--meters", type=int, default=100, help="readings per gateway message")
    ap.add_argument("--warmup", type=float, default=10, help="seconds of load before the measured window")
    ap.add_argument("--gateways-per-site", type=int, default=gateways_per_site,
                    help="gateways per registry site (Kafka records are keyed by site)")
    if backend:
        ap.add_argument("--backend", choices=get_args(BackendChoice), default=None,
                        help="storage backend of the run's database (default: NXEM_DB_BACKEND, else auto)")


def fail_on_loss(results: Sequence[RunResult]) -> None:
    """Exit non-zero when a run did not store exactly the acknowledged readings (not a timing verdict)."""
    bad = [r for r in results if r.lost or r.extra]
    if bad:
        raise SystemExit("NOT exactly once: " + "; ".join(
            f"{r.backend} {r.workers}x{r.collectors}: lost {r.lost:,}, extra {r.extra:,}" for r in bad))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=100_000)
    add_pipeline_args(ap)
    ap.add_argument("--no-raw", action="store_true", help="skip the raw component figures")
    ap.add_argument("--no-alert-probe", action="store_true", help="no data centre registered and backfilled mid-run")
    ap.add_argument("--workers", type=int, default=1, help="stream workers in the consumer group")
    ap.add_argument("--collectors", type=int, default=1, help="collectors (an MQTT shared subscription when > 1)")
    ap.add_argument("--partitions", type=int, default=None, help="partitions of the run's topics (default max(6, workers))")
    a = ap.parse_args()
    fail_on_loss([run(a.rate, a.duration, a.gateways, a.meters, raw=not a.no_raw, warmup_s=a.warmup,
                      alert_probe=not a.no_alert_probe, workers=a.workers, collectors=a.collectors,
                      backend=a.backend, partitions=a.partitions, gateways_per_site=a.gateways_per_site)])


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
