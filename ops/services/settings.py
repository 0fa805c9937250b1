"""Settings of the local service runner: endpoints, data folder and topic names (prefix ``NXEM_``).

Built once by the caller (the CLI or a test session) and passed down; every field is documented
in ``docs/ARCHITECTURE.md``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.migrate import BackendChoice

#: Repository root: the parent of the ``nxem`` package folder.
REPO_ROOT: Path = Path(__file__).resolve().parents[2]


class ServiceSettings(BaseSettings):
    """Where the local Mosquitto, Kafka and PostgreSQL listen and keep their data."""

    model_config = SettingsConfigDict(env_prefix="NXEM_", frozen=True, extra="ignore")

    data_dir: Path = Field(default=REPO_ROOT / ".data")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=11883, ge=1, le=65535)
    mqtt_anonymous: bool = True
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_controller_port: int = Field(default=19093, ge=1, le=65535)
    kafka_partitions: int = Field(default=6, ge=1)
    kafka_heap: str = Field(default="768m", pattern=r"^[0-9]+[kmgKMG]$")
    pg_host: str = "127.0.0.1"
    pg_port: int = Field(default=15432, ge=1, le=65535)
    pg_db: str = Field(default="nxem", pattern=r"^[a-z_][a-z0-9_]*$")
    db_backend: BackendChoice = Field(
        default="auto",
        description="storage path of a new database at its first `nxem db migrate`: auto "
                    "(TimescaleDB when the server can load it), native (PostgreSQL partitions) "
                    "or timescale (an error when the extension is missing)")
    pg_timescaledb_dir: Path | None = Field(
        default=None,
        description="folder whose install.sh (when present, run as root) installs TimescaleDB "
                    "before the local PostgreSQL starts; the server then preloads it "
                    "(default <repo>/../shared/tools/timescaledb)")
    topic_readings: str = "nxem.readings.v1"
    topic_alerts: str = "nxem.alerts.v1"
    topic_deadletter: str = "nxem.deadletter.v1"

    @property
    def kafka_host(self) -> str:
        """Host part of ``kafka_bootstrap``."""
        return self.kafka_bootstrap.rsplit(":", 1)[0]

    @property
    def kafka_port(self) -> int:
        """Port part of ``kafka_bootstrap``."""
        return int(self.kafka_bootstrap.rsplit(":", 1)[1])

    @property
    def topics(self) -> tuple[str, str, str]:
        """The pipeline topics created by ``services up``."""
        return (self.topic_readings, self.topic_alerts, self.topic_deadletter)

    def timescaledb_installer(self) -> Path:
        """The TimescaleDB ``install.sh`` the runner uses when it exists."""
        folder = self.pg_timescaledb_dir or REPO_ROOT.parent / "shared" / "tools" / "timescaledb"
        return folder.expanduser().resolve() / "install.sh"

    def resolved_data_dir(self) -> Path:
        """Absolute data folder (relative values are taken from the current directory)."""
        return self.data_dir.expanduser().resolve()
