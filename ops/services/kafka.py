"""Single-node Apache Kafka 4.3 (KRaft) from Maven Central jars: fetch, format, start, topics.

Jars come from ``deploy/kafka/pom.xml`` via Maven into ``<data_dir>/kafka/libs`` (refetched only
when the pom's sha256 changes). A second broker on the same data folder corrupts the metadata
log, so a running broker holds an ``fcntl.flock`` on ``<data_dir>/kafka/broker.lock`` for its
whole life (the locked descriptor is passed to the JVM), and a start is refused while that lock
is held, the recorded pid is alive, or either port is taken.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import string
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nxem.errors import BackendUnavailable, ServiceError
from ops.services import procs
from ops.services.settings import REPO_ROOT, ServiceSettings

if TYPE_CHECKING:
    from kafka import KafkaAdminClient

# kafka-python 3.0.12 calls the deprecated importlib.resources.read_text at import time;
# with warnings as errors (pytest) a plain import fails, so import it once with that silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka as _kafka_lib
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)

NAME = "kafka"
_DEPLOY = REPO_ROOT / "deploy" / "kafka"
_POM = _DEPLOY / "pom.xml"
_SERVER_TEMPLATE = _DEPLOY / "server.properties.tmpl"
_LOG4J2 = _DEPLOY / "log4j2.properties"
_RETENTION_MS = 7 * 24 * 3600 * 1000
_READY_TIMEOUT_S = 60.0


def kafka_dir(settings: ServiceSettings) -> Path:
    """Everything of the broker: libs, config, lock, data."""
    return settings.resolved_data_dir() / "kafka"


def libs_dir(settings: ServiceSettings) -> Path:
    """The jars copied by Maven."""
    return kafka_dir(settings) / "libs"


def config_path(settings: ServiceSettings) -> Path:
    """Generated ``server.properties``."""
    return kafka_dir(settings) / "server.properties"


def data_path(settings: ServiceSettings) -> Path:
    """``log.dirs`` of the broker (record data and the KRaft metadata log)."""
    return kafka_dir(settings) / "data"


def app_log_dir(settings: ServiceSettings) -> Path:
    """``kafka.logs.dir``: the broker's own log files."""
    path = procs.log_dir(settings) / "kafka"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _stdout_path(settings: ServiceSettings) -> Path:
    return procs.log_dir(settings) / "kafka.stdout.log"


def _server_log(settings: ServiceSettings) -> Path:
    return app_log_dir(settings) / "server.log"


def _marker(settings: ServiceSettings) -> str:
    return str(config_path(settings))


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ServiceError("kafka: `java` not found (install openjdk-17-jre-headless)")
    return java


def _classpath(settings: ServiceSettings) -> str:
    # One argv element, never expanded by a shell: Java expands the trailing '*' itself.
    return f"{libs_dir(settings)}/*"


def ensure_libs(settings: ServiceSettings) -> Path:
    """Copy the broker's runtime jars with Maven unless they match the pom's sha256."""
    libs = libs_dir(settings)
    stamp = kafka_dir(settings) / "libs.sha256"
    digest = hashlib.sha256(_POM.read_bytes()).hexdigest()
    if libs.is_dir() and stamp.exists() and stamp.read_text(encoding="ascii").strip() == digest:
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError("kafka: `mvn` not found (install the Debian package maven)")
    staging = kafka_dir(settings) / "libs.staging"
    shutil.rmtree(staging, ignore_errors=True)
    log.info("fetching kafka jars with maven pom=%s", _POM)
    procs.run_checked(NAME, [mvn, "-q", "-B", "-f", str(_POM), "dependency:copy-dependencies",
                             "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
                      timeout_s=900)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    stamp.write_text(digest + "\n", encoding="ascii")
    return libs


def write_config(settings: ServiceSettings) -> Path:
    """Render ``server.properties`` from the template."""
    template = string.Template(_SERVER_TEMPLATE.read_text(encoding="utf-8"))
    text = template.substitute(host=settings.kafka_host, port=settings.kafka_port,
                               controller_port=settings.kafka_controller_port,
                               log_dirs=str(data_path(settings)))
    path = config_path(settings)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _storage_tool(settings: ServiceSettings, *args: str) -> str:
    return procs.run_checked(NAME, [_java(), "-cp", _classpath(settings),
                                    "kafka.tools.StorageTool", *args], timeout_s=120)


def ensure_formatted(settings: ServiceSettings) -> None:
    """Format the KRaft storage once (when ``meta.properties`` is missing)."""
    if (data_path(settings) / "meta.properties").exists():
        return
    cluster_id = _storage_tool(settings, "random-uuid").strip().splitlines()[-1].strip()
    _storage_tool(settings, "format", "-t", cluster_id, "-c", str(config_path(settings)))
    (kafka_dir(settings) / "cluster.id").write_text(cluster_id + "\n", encoding="ascii")
    log.info("formatted kafka storage cluster_id=%s", cluster_id)


def running_pid(settings: ServiceSettings) -> int | None:
    """Pid of our broker when it runs (by its pid file)."""
    return procs.live_pid(settings, NAME, _marker(settings))


def _take_lock(settings: ServiceSettings) -> int:
    """Open and lock ``broker.lock``; the caller hands the fd to the JVM and closes its copy."""
    path = kafka_dir(settings) / "broker.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as err:
        os.close(fd)
        raise ServiceError(
            f"kafka: refusing to start: another broker holds {path} (a second broker on the "
            f"same data folder corrupts its metadata log). Stop it first with "
            f"`nxem services down --only kafka`, or find it with `fuser {path}`.") from err
    return fd


def _admin(settings: ServiceSettings, timeout_ms: int = 5000) -> KafkaAdminClient:
    return _kafka_lib.KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="nxem-services",
                            request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms)


def metadata_ok(settings: ServiceSettings) -> bool:
    """True when a metadata call to the broker succeeds."""
    if not procs.port_open(settings.kafka_host, settings.kafka_port):
        return False
    try:
        admin = _admin(settings, 3000)
    except KafkaError:
        return False
    try:
        admin.describe_cluster()
        return True
    except KafkaError:
        return False
    finally:
        admin.close()


def ensure_topics(settings: ServiceSettings) -> dict[str, int]:
    """Create the pipeline topics when missing, with the record size limit of ``nxem.kafka``
    (raised on an existing topic below it); returns partitions per pipeline topic."""
    from nxem.kafka import TOPIC_CONFIGS, TOPIC_MIN_MESSAGE_BYTES, topic_max_message_bytes

    admin = _admin(settings, 15000)
    try:
        existing = set(admin.list_topics())
        missing = {name: {"num_partitions": settings.kafka_partitions, "replication_factor": 1,
                          "configs": {"cleanup.policy": "delete",
                                      "retention.ms": str(_RETENTION_MS), **TOPIC_CONFIGS}}
                   for name in settings.topics if name not in existing}
        for name, spec in missing.items():
            try:
                admin.create_topics({name: spec}, wait_for_metadata=True)
                log.info("created topic=%s partitions=%s", name, settings.kafka_partitions)
            except TopicAlreadyExistsError:
                log.debug("topic=%s already exists", name)
        older = [name for name, limit in topic_max_message_bytes(settings.kafka_bootstrap, settings.topics).items()
                 if limit is not None and limit < TOPIC_MIN_MESSAGE_BYTES]
        if older:  # created before the limit was set: an incremental SET leaves its other configs
            done = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, dict(TOPIC_CONFIGS))
                                        for name in older]).get("topic", {})
            refused = {name: result for name, result in done.items() if result != "OK"}
            if refused:
                raise ServiceError(f"kafka: could not raise max.message.bytes of {refused}")
            log.info("raised max.message.bytes of topics=%s to %s", older, TOPIC_CONFIGS["max.message.bytes"])
        described: list[dict[str, Any]] = admin.describe_topics(list(settings.topics))
        return {str(t["name"]): len(t["partitions"]) for t in described if t["error_code"] == 0}
    except (KafkaError, BackendUnavailable) as err:
        raise ServiceError(f"kafka: could not create topics on {settings.kafka_bootstrap}: "
                           f"{err!r}") from err
    finally:
        admin.close()


def start(settings: ServiceSettings) -> bool:
    """Start the broker, wait for metadata, create the topics. False when it already ran."""
    if running_pid(settings) is not None:
        ensure_topics(settings)
        return False
    procs.ensure_data_dir(settings)
    kafka_dir(settings).mkdir(parents=True, exist_ok=True)
    lock_fd = _take_lock(settings)
    try:
        for port in (settings.kafka_port, settings.kafka_controller_port):
            if procs.port_open(settings.kafka_host, port):
                raise ServiceError(f"kafka: port {settings.kafka_host}:{port} is taken by another "
                                   "process; stop it or change NXEM_KAFKA_BOOTSTRAP / "
                                   "NXEM_KAFKA_CONTROLLER_PORT")
        ensure_libs(settings)
        conf = write_config(settings)
        ensure_formatted(settings)
        argv = [_java(), f"-Xmx{settings.kafka_heap}", f"-Xms{settings.kafka_heap}",
                "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dkafka.logs.dir={app_log_dir(settings)}",
                f"-Dlog4j2.configurationFile={_LOG4J2}",
                "-cp", _classpath(settings), "kafka.Kafka", str(conf)]
        pid = procs.spawn_detached(settings, NAME, argv, log_path=_stdout_path(settings),
                                   pass_fds=(lock_fd,), cwd=kafka_dir(settings))
    finally:
        os.close(lock_fd)  # the JVM keeps its own copy of the locked descriptor

    def ready() -> bool:
        if not procs.is_alive(pid, _marker(settings)):
            raise ServiceError(f"kafka: broker exited during start-up\n"
                               f"{procs.log_tail(_stdout_path(settings))}\n"
                               f"{procs.log_tail(_server_log(settings))}")
        return metadata_ok(settings)

    if not procs.wait_for(ready, _READY_TIMEOUT_S, 0.5):
        raise ServiceError(f"kafka: no metadata from {settings.kafka_bootstrap} within "
                           f"{_READY_TIMEOUT_S:.0f} s\n{procs.log_tail(_server_log(settings))}")
    ensure_topics(settings)
    log.info("kafka ready pid=%s bootstrap=%s", pid, settings.kafka_bootstrap)
    return True


def stop(settings: ServiceSettings) -> bool:
    """SIGTERM the broker by pid (controlled shutdown), SIGKILL after 60 s. True if it ran."""
    pid = running_pid(settings)
    if pid is None:
        return False
    procs.stop_pid(NAME, pid, _marker(settings), timeout_s=60.0)
    procs.pid_file(settings, NAME).unlink(missing_ok=True)
    return True


def status(settings: ServiceSettings) -> procs.ServiceStatus:
    """Pid, liveness and endpoint of the broker."""
    pid = running_pid(settings)
    return procs.ServiceStatus(NAME, pid, pid is not None, f"kafka://{settings.kafka_bootstrap}")
