"""Private PostgreSQL 15 cluster under ``<data_dir>/pg``: initdb, config, start/stop, admin DSN.

``initdb`` refuses to run as root, so when we are root the cluster belongs to the ``postgres``
OS user and every server command runs through ``runuser -u postgres --``. The superuser
``nxem_admin`` gets a random password kept in ``<data_dir>/secrets/pg-admin.password`` (0600);
it is never logged. TimescaleDB is preloaded only when its extension files are installed.
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from nxem.errors import ServiceError
from nxem.services import procs
from nxem.services.settings import ServiceSettings

log = logging.getLogger(__name__)

NAME = "postgres"
ADMIN_ROLE = "nxem_admin"
_DEBIAN_BINDIR = Path("/usr/lib/postgresql/15/bin")
_PG_OS_USER = "postgres"


def pg_bindir() -> Path:
    """Server binaries (``pg_config --bindir``; never the ``/usr/local/bin/pg_ctl`` wrapper)."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if out.returncode == 0 and (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    if (_DEBIAN_BINDIR / "postgres").exists():
        return _DEBIAN_BINDIR
    raise ServiceError("postgres: PostgreSQL 15 server binaries not found "
                       "(install the Debian package postgresql-15)")


def timescaledb_available() -> bool:
    """True when the TimescaleDB extension files are installed for this server."""
    pg_config = shutil.which("pg_config")
    sharedir = Path("/usr/share/postgresql/15")
    if pg_config:
        out = subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            sharedir = Path(out.stdout.strip())
    return (sharedir / "extension" / "timescaledb.control").exists()


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", _PG_OS_USER, "--", *argv] if _is_root() else argv


def _chown_to_server_user(path: Path) -> None:
    if _is_root():
        entry = pwd.getpwnam(_PG_OS_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def pgdata(settings: ServiceSettings) -> Path:
    """The cluster's data folder."""
    return settings.resolved_data_dir() / "pg"


def socket_dir(settings: ServiceSettings) -> Path:
    """Unix socket folder (writable by the server user)."""
    return procs.run_dir(settings) / "pg"


def log_path(settings: ServiceSettings) -> Path:
    """Server log file."""
    return procs.log_dir(settings) / "postgres.log"


def password_file(settings: ServiceSettings) -> Path:
    """File holding the ``nxem_admin`` password (0600)."""
    return settings.resolved_data_dir() / "secrets" / "pg-admin.password"


def _admin_password(settings: ServiceSettings) -> str:
    path = password_file(settings)
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ServiceError(f"postgres: admin password file {path} is missing; "
                           "run `nxem services up --only postgres`") from err


def _ensure_password(settings: ServiceSettings) -> str:
    path = password_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
        log.info("generated postgres admin password file=%s", path)
    path.chmod(0o600)
    return _admin_password(settings)


def admin_dsn(settings: ServiceSettings, dbname: str | None = None) -> str:
    """Conninfo of the superuser ``nxem_admin`` (contains the password: never log it)."""
    return make_conninfo(host=settings.pg_host, port=settings.pg_port,
                         dbname=dbname or settings.pg_db, user=ADMIN_ROLE,
                         password=_admin_password(settings), connect_timeout=5)


def masked_dsn(settings: ServiceSettings, dbname: str | None = None) -> str:
    """The admin DSN with the password masked, for logs and messages."""
    return make_conninfo(host=settings.pg_host, port=settings.pg_port,
                         dbname=dbname or settings.pg_db, user=ADMIN_ROLE, password="***")


def _marker(settings: ServiceSettings) -> str:
    return f"-D {pgdata(settings)}"


def _config_text(settings: ServiceSettings) -> str:
    lines = [
        "# Written by nxem services (regenerated on every `up`); included from postgresql.conf.",
        f"port = {settings.pg_port}",
        f"listen_addresses = '{settings.pg_host}'",
        f"unix_socket_directories = '{socket_dir(settings)}'",
        "shared_buffers = 512MB",
        "synchronous_commit = on",
        "max_wal_size = 2GB",
        "wal_compression = on",
        "logging_collector = off",
    ]
    if timescaledb_available():
        lines += ["shared_preload_libraries = 'timescaledb'", "timescaledb.telemetry_level = off"]
    return "\n".join(lines) + "\n"


def _init_cluster(settings: ServiceSettings, bindir: Path) -> None:
    data = pgdata(settings)
    if (data / "PG_VERSION").exists():
        return
    password = _ensure_password(settings)
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    _chown_to_server_user(data)
    # initdb reads the password from a file the server user can read; removed right after.
    pwfile = socket_dir(settings) / ".initdb-pw"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    _chown_to_server_user(pwfile)
    try:
        procs.run_checked(NAME, _as_server_user([
            str(bindir / "initdb"), "-D", str(data), f"--username={ADMIN_ROLE}",
            f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=peer",
            "--encoding=UTF8", "--locale=C.UTF-8"]), timeout_s=180)
    finally:
        pwfile.unlink(missing_ok=True)
    log.info("initialised postgres cluster data=%s", data)


def _write_config(settings: ServiceSettings) -> None:
    data = pgdata(settings)
    own = data / "nxem.conf"
    own.write_text(_config_text(settings), encoding="utf-8")
    _chown_to_server_user(own)
    main = data / "postgresql.conf"
    text = main.read_text(encoding="utf-8")
    if "include_if_exists = 'nxem.conf'" not in text:
        main.write_text(text + "\ninclude_if_exists = 'nxem.conf'\n", encoding="utf-8")


def _ensure_traversable(path: Path) -> None:
    """The server user must reach the data folder: a checkout under a 0700 directory (such
    as one made by ``mktemp -d``) would stop initdb. Add search permission (o+x: traverse,
    not list) to each ancestor that lacks it, when running as root."""
    if not _is_root():
        return
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            log.info("added o+x to %s so the %s user can reach the data folder", parent, _PG_OS_USER)


def _prepare_dirs(settings: ServiceSettings) -> None:
    procs.ensure_data_dir(settings)
    _ensure_traversable(settings.resolved_data_dir())
    sock = socket_dir(settings)
    sock.mkdir(parents=True, exist_ok=True)
    sock.chmod(0o755)
    _chown_to_server_user(sock)
    logfile = log_path(settings)
    logfile.touch(exist_ok=True)
    _chown_to_server_user(logfile)


def running_pid(settings: ServiceSettings) -> int | None:
    """Postmaster pid when our cluster runs."""
    pid = procs.live_pid(settings, NAME, _marker(settings))
    if pid is not None:
        return pid
    # Started by hand or by an older runner: trust postmaster.pid when its process is ours.
    pid = procs.read_pid(pgdata(settings) / "postmaster.pid")
    if procs.is_alive(pid, _marker(settings)) and pid is not None:
        procs.write_pid(procs.pid_file(settings, NAME), pid)
        return pid
    return None


def _ensure_database(settings: ServiceSettings) -> None:
    with psycopg.connect(admin_dsn(settings, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (settings.pg_db,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.pg_db)))
            log.info("created database db=%s", settings.pg_db)


def _can_connect(settings: ServiceSettings) -> bool:
    try:
        with psycopg.connect(admin_dsn(settings, "postgres"), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def start(settings: ServiceSettings) -> bool:
    """Start the cluster (initdb on first use) and wait until it accepts logins.

    Returns False when it was already running, True when this call started it.
    """
    if running_pid(settings) is not None:
        _ensure_database(settings)
        return False
    if procs.port_open(settings.pg_host, settings.pg_port):
        raise ServiceError(f"postgres: port {settings.pg_host}:{settings.pg_port} is taken by "
                           "another process; stop it or set NXEM_PG_PORT")
    bindir = pg_bindir()
    _prepare_dirs(settings)
    _init_cluster(settings, bindir)
    _write_config(settings)
    logfile = log_path(settings)
    argv = _as_server_user([str(bindir / "pg_ctl"), "-D", str(pgdata(settings)), "-l",
                            str(logfile), "-w", "-t", "90", "start"])
    procs.run_checked(NAME, argv, log_path=logfile, timeout_s=120)
    pid = procs.read_pid(pgdata(settings) / "postmaster.pid")
    if pid is None or not procs.is_alive(pid, _marker(settings)):
        raise ServiceError(f"postgres: pg_ctl reported success but no postmaster runs\n"
                           f"{procs.log_tail(logfile)}")
    procs.write_pid(procs.pid_file(settings, NAME), pid)
    if not procs.wait_for(lambda: _can_connect(settings), 60.0, 0.25):
        raise ServiceError(f"postgres: no login possible at {masked_dsn(settings, 'postgres')}\n"
                           f"{procs.log_tail(logfile)}")
    _ensure_database(settings)
    log.info("postgres ready pid=%s dsn=%s", pid, masked_dsn(settings))
    return True


def stop(settings: ServiceSettings) -> bool:
    """Fast shutdown (SIGINT) of the postmaster by pid; SIGKILL after 60 s. True if it ran."""
    pid = running_pid(settings)
    if pid is None:
        return False
    procs.stop_pid(NAME, pid, _marker(settings), timeout_s=60.0, first_signal=signal.SIGINT)
    procs.pid_file(settings, NAME).unlink(missing_ok=True)
    return True


def status(settings: ServiceSettings) -> procs.ServiceStatus:
    """Pid, liveness and endpoint of the cluster."""
    pid = running_pid(settings)
    return procs.ServiceStatus(NAME, pid, pid is not None,
                               f"postgresql://{settings.pg_host}:{settings.pg_port}/{settings.pg_db}")
