"""Private PostgreSQL 15 cluster under ``<data_dir>/pg``: initdb, config, start/stop, admin DSN.

``initdb`` refuses to run as root, so when we are root the cluster belongs to the ``postgres``
OS user and every server command runs through ``runuser -u postgres --``. The superuser
``nxem_admin`` gets a random password kept in ``<data_dir>/secrets/pg-admin.password`` (0600);
it is never logged. TimescaleDB is preloaded only when its extension files are installed.

TimescaleDB: when ``<repo>/../shared/tools/timescaledb/install.sh`` exists (``NXEM_PG_TIMESCALEDB_DIR``
names another folder) and we are root, ``start`` runs it *before* the server starts: it may
upgrade the postgresql-15 package, and a server left running on the old binaries cannot load
extensions. A running server is stopped first when the extension is missing, and restarted when
its binaries or its ``shared_preload_libraries`` differ from what the config now says.

``pg_hba.conf`` gets a managed block that rejects every connection as the schema owner
(``nxem_owner``): TimescaleDB runs its jobs as the hypertables' owner and demands that the role
may LOG IN, so the role has LOGIN with no password (``PASSWORD NULL``); background workers do
not pass through pg_hba, clients always do.
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
from ops.services import procs
from ops.services.settings import ServiceSettings
from storage.roles import OWNER, OWNER_HBA_LINES

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


def _install_timescaledb(settings: ServiceSettings) -> bool:
    """Run the TimescaleDB installer when it exists (idempotent; the server must be stopped).
    Returns True when it ran."""
    installer = settings.timescaledb_installer()
    if not installer.is_file():
        return False
    if not _is_root():
        if not timescaledb_available():
            log.warning("TimescaleDB installer %s needs root; PostgreSQL starts without it", installer)
        return False
    out = procs.run_checked(NAME, ["bash", str(installer)], timeout_s=900)
    log.info("%s", out.strip().splitlines()[-1] if out.strip() else f"ran {installer}")
    if not timescaledb_available():
        raise ServiceError(f"postgres: {installer} ran but timescaledb.control is not installed")
    return True


def _installer_pending(settings: ServiceSettings) -> bool:
    """The installer exists, we may run it, and the extension is not installed yet."""
    return settings.timescaledb_installer().is_file() and _is_root() and not timescaledb_available()


def _binary_version(bindir: Path) -> str:
    """``15.20`` from ``postgres -V`` of the installed binaries."""
    out = subprocess.run([str(bindir / "postgres"), "-V"], capture_output=True, text=True, check=False)
    words = out.stdout.split()
    return words[2] if len(words) >= 3 else ""


def _wanted_preload() -> str:
    return "timescaledb" if timescaledb_available() else ""


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
    if _wanted_preload():
        lines += [f"shared_preload_libraries = '{_wanted_preload()}'",
                  "timescaledb.telemetry_level = off",
                  # one job scheduler per database with the extension, plus the jobs: test runs
                  # hold dozens of databases, and 8 slots left jobs "failed to start a background
                  # worker" (takes effect at the next server start; no restart is forced for it)
                  "max_worker_processes = 64",
                  "timescaledb.max_background_workers = 48"]
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


def _write_config(settings: ServiceSettings) -> bool:
    """Write ``nxem.conf`` and the managed pg_hba block; True when a file changed."""
    data = pgdata(settings)
    changed = False
    own = data / "nxem.conf"
    text = _config_text(settings)
    if not own.exists() or own.read_text(encoding="utf-8") != text:
        own.write_text(text, encoding="utf-8")
        _chown_to_server_user(own)
        changed = True
    main = data / "postgresql.conf"
    conf = main.read_text(encoding="utf-8")
    if "include_if_exists = 'nxem.conf'" not in conf:
        main.write_text(conf + "\ninclude_if_exists = 'nxem.conf'\n", encoding="utf-8")
        changed = True
    return _write_hba(data) or changed


_HBA_BEGIN = "# BEGIN nxem managed block (regenerated by `nxem services up`)"
_HBA_END = "# END nxem managed block"


def hba_block() -> str:
    """pg_hba lines that come before initdb's: nobody connects as the schema owner."""
    return "\n".join([
        _HBA_BEGIN,
        f"# {OWNER} owns the schema; it has LOGIN only because TimescaleDB runs its jobs as the",
        "# hypertables' owner and requires it. Background workers do not pass through pg_hba;",
        "# every client connection as the owner is refused here (and it has no password).",
        *OWNER_HBA_LINES,
        _HBA_END,
    ]) + "\n"


def _write_hba(data: Path) -> bool:
    path = data / "pg_hba.conf"
    text = path.read_text(encoding="utf-8")
    if _HBA_BEGIN in text and _HBA_END in text:
        head, rest = text.split(_HBA_BEGIN, 1)
        tail = rest.split(_HBA_END, 1)[1].lstrip("\n")
        text_without = head + tail
    else:
        text_without = text
    new = hba_block() + text_without
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


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


def _running_differs(settings: ServiceSettings, bindir: Path) -> str | None:
    """Why the running server must restart (other binaries or preload list), or None."""
    with psycopg.connect(admin_dsn(settings, "postgres"), autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    running_version = str(version[0]).split()[0] if version else ""
    installed_version = _binary_version(bindir)
    if installed_version and running_version != installed_version:
        return f"binaries {running_version} -> {installed_version}"
    running_preload = str(preload[0]) if preload else ""
    if running_preload != _wanted_preload():
        return f"shared_preload_libraries {running_preload!r} -> {_wanted_preload()!r}"
    return None


def _reload(settings: ServiceSettings) -> None:
    with psycopg.connect(admin_dsn(settings, "postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    log.info("postgres reloaded its configuration")


def start(settings: ServiceSettings) -> bool:
    """Start the cluster (initdb on first use) and wait until it accepts logins.

    A running cluster is stopped to install TimescaleDB when its installer is pending, and
    restarted when its binaries or preload list differ from the config (see the module doc).
    Returns False when it was already running unchanged, True when this call (re)started it.
    """
    if running_pid(settings) is not None:
        bindir = pg_bindir()
        reason = "TimescaleDB to install" if _installer_pending(settings) else None
        changed = _write_config(settings)
        reason = reason or _running_differs(settings, bindir)
        if reason is None:
            if changed:
                _reload(settings)
            _ensure_database(settings)
            return False
        log.info("restarting postgres: %s", reason)
        stop(settings)
    if procs.port_open(settings.pg_host, settings.pg_port):
        raise ServiceError(f"postgres: port {settings.pg_host}:{settings.pg_port} is taken by "
                           "another process; stop it or set NXEM_PG_PORT")
    _install_timescaledb(settings)  # before the server starts: it may upgrade the binaries
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
