"""Our own Mosquitto broker: Debian package install, config from the template, start/stop, reload.

The broker runs as a separate process with ``-c <data_dir>/mosquitto/mosquitto.conf`` (never the
system service). When ``passwd`` and ``acl`` files exist next to the config, anonymous access is
switched off and they are used (``nxem mqtt-access`` writes them from the registry, see
``collector.access``); :func:`reload_mosquitto` regenerates the config and sends SIGHUP.
"""

from __future__ import annotations

import logging
import os
import signal
import shutil
import socket
import string
import struct
import time
from pathlib import Path

from nxem.errors import ServiceError
from ops.services import procs
from ops.services.settings import REPO_ROOT, ServiceSettings

log = logging.getLogger(__name__)

NAME = "mosquitto"
_BINARY = Path("/usr/sbin/mosquitto")
_TEMPLATE = REPO_ROOT / "deploy" / "local" / "mosquitto.conf.tmpl"
# Keeps invoke-rc.d from starting the system broker while the package installs.
_POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def mosquitto_dir(settings: ServiceSettings) -> Path:
    """Config, persistence and auth files of our broker."""
    return settings.resolved_data_dir() / "mosquitto"


def config_path(settings: ServiceSettings) -> Path:
    """Generated broker config."""
    return mosquitto_dir(settings) / "mosquitto.conf"


def log_path(settings: ServiceSettings) -> Path:
    """Broker log file (written by mosquitto itself)."""
    return procs.log_dir(settings) / "mosquitto.log"


def _stdout_path(settings: ServiceSettings) -> Path:
    return procs.log_dir(settings) / "mosquitto.stdout.log"


def binary() -> Path:
    """The mosquitto executable."""
    if _BINARY.exists():
        return _BINARY
    found = shutil.which("mosquitto")
    if found:
        return Path(found)
    raise ServiceError("mosquitto: binary not found")


def ensure_installed() -> Path:
    """Install the Debian packages ``mosquitto`` and ``mosquitto-clients`` when missing."""
    if _BINARY.exists() or shutil.which("mosquitto"):
        return binary()
    if os.geteuid() != 0:
        raise ServiceError("mosquitto: not installed and not root; run as root or "
                           "`apt-get install mosquitto mosquitto-clients` first")
    log.info("installing Debian packages mosquitto mosquitto-clients")
    env_prefix = ["env", "DEBIAN_FRONTEND=noninteractive"]
    added_policy = False
    if not _POLICY_RC_D.exists():
        _POLICY_RC_D.write_text("#!/bin/sh\nexit 101\n", encoding="ascii")
        _POLICY_RC_D.chmod(0o755)
        added_policy = True
    try:
        procs.run_checked(NAME, [*env_prefix, "apt-get", "update"], timeout_s=600)
        procs.run_checked(NAME, [*env_prefix, "apt-get", "install", "-y",
                                 "--no-install-recommends", "mosquitto", "mosquitto-clients"],
                          timeout_s=900)
    finally:
        if added_policy:
            _POLICY_RC_D.unlink(missing_ok=True)
    return binary()


def _auth_block(settings: ServiceSettings) -> str:
    folder = mosquitto_dir(settings)
    passwd, acl = folder / "passwd", folder / "acl"
    if passwd.exists() and acl.exists():
        # Client id = user name: one gateway cannot take over another's session.
        return (f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
                "use_username_as_clientid true")
    return f"allow_anonymous {'true' if settings.mqtt_anonymous else 'false'}"


def render_config(settings: ServiceSettings) -> str:
    """Broker config text for ``settings``."""
    template = string.Template(_TEMPLATE.read_text(encoding="utf-8"))
    persistence = mosquitto_dir(settings) / "data"
    return template.substitute(
        mqtt_host=settings.mqtt_host, mqtt_port=settings.mqtt_port,
        persistence_dir=str(persistence), log_file=str(log_path(settings)),
        auth_block=_auth_block(settings))


def write_config(settings: ServiceSettings) -> Path:
    """Regenerate the config file (and the persistence folder)."""
    procs.ensure_data_dir(settings)
    (mosquitto_dir(settings) / "data").mkdir(parents=True, exist_ok=True)
    path = config_path(settings)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render_config(settings), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _marker(settings: ServiceSettings) -> str:
    return str(config_path(settings))


def running_pid(settings: ServiceSettings) -> int | None:
    """Pid of our broker when it runs."""
    return procs.live_pid(settings, NAME, _marker(settings))


def connack_ok(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """True when the broker answers an MQTT 3.1.1 CONNECT with a CONNACK (any return code).

    A refusal (e.g. not authorised once anonymous access is off) still proves readiness.
    """
    client_id = f"nxem-ready-{os.getpid()}".encode()
    variable = b"\x00\x04MQTT\x04\x02" + struct.pack("!H", 10)
    payload = struct.pack("!H", len(client_id)) + client_id
    body = variable + payload
    packet = b"\x10" + bytes([len(body)]) + body
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(packet)
            reply = sock.recv(4)
            if len(reply) == 4 and reply[0] == 0x20:
                if reply[3] == 0:
                    sock.sendall(b"\xe0\x00")
                return True
    except OSError:
        return False
    return False


def start(settings: ServiceSettings) -> bool:
    """Start the broker and wait for a CONNACK. False when it was already running."""
    if running_pid(settings) is not None:
        return False
    if procs.port_open(settings.mqtt_host, settings.mqtt_port):
        raise ServiceError(f"mosquitto: port {settings.mqtt_host}:{settings.mqtt_port} is taken "
                           "by another process; stop it or set NXEM_MQTT_PORT")
    exe = ensure_installed()
    conf = write_config(settings)
    # One retry of a broker that exits at once: seen once in CI right after a stop of the
    # previous broker (port free, no message in either log); the second exit is the error.
    for attempt in (1, 2):
        pid = procs.spawn_detached(settings, NAME, [str(exe), "-c", str(conf)],
                                   log_path=_stdout_path(settings))

        def ready(pid: int = pid) -> bool:
            if not procs.is_alive(pid, _marker(settings)):
                raise ServiceError(f"mosquitto: exited during start-up\n"
                                   f"{procs.log_tail(_stdout_path(settings))}\n"
                                   f"{procs.log_tail(log_path(settings))}")
            return connack_ok(settings.mqtt_host, settings.mqtt_port)

        try:
            if not procs.wait_for(ready, 30.0):
                raise ServiceError(f"mosquitto: no CONNACK on {settings.mqtt_host}:{settings.mqtt_port} "
                                   f"within 30 s\n{procs.log_tail(log_path(settings))}")
            break
        except ServiceError as err:
            if attempt == 2 or "exited during start-up" not in str(err):
                raise
            log.warning("mosquitto exited during start-up, starting it once more: %s", err)
            time.sleep(1.0)
    log.info("mosquitto ready pid=%s endpoint=%s:%s", pid, settings.mqtt_host, settings.mqtt_port)
    return True


def reload_mosquitto(settings: ServiceSettings) -> None:
    """Regenerate the config (e.g. after passwd/acl changed) and SIGHUP the running broker."""
    write_config(settings)
    pid = running_pid(settings)
    if pid is None:
        log.info("mosquitto not running; config regenerated only")
        return
    os.kill(pid, signal.SIGHUP)  # reloads auth, ACL and most settings (not listeners)
    log.info("mosquitto reloaded pid=%s", pid)


def stop(settings: ServiceSettings) -> bool:
    """SIGTERM the broker by pid (it saves its persistence file), SIGKILL after 20 s."""
    pid = running_pid(settings)
    if pid is None:
        return False
    procs.stop_pid(NAME, pid, _marker(settings), timeout_s=20.0)
    procs.pid_file(settings, NAME).unlink(missing_ok=True)
    return True


def status(settings: ServiceSettings) -> procs.ServiceStatus:
    """Pid, liveness and endpoint of the broker."""
    pid = running_pid(settings)
    return procs.ServiceStatus(NAME, pid, pid is not None,
                               f"mqtt://{settings.mqtt_host}:{settings.mqtt_port}")
