"""Settings of the simulators (prefix ``NXEM_``, frozen, built once in ``cli``/``__main__``).

Every variable is listed in ``ENV_VARS`` (shown by ``--help`` and kept in step with the
fields by a unit test). The MQTT password is never a field: only the path of the file that
holds it, read by ``simulators.mqtt`` when it connects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from nxem.errors import ConfigError


class SimulatorSettings(BaseSettings):
    """Where the simulated gateways publish, and how."""

    model_config = SettingsConfigDict(env_prefix="NXEM_", frozen=True, extra="ignore")

    mqtt_host: str = Field(default="127.0.0.1", description="Mosquitto host")
    mqtt_port: int = Field(default=11883, ge=1, le=65535, description="Mosquitto port")
    mqtt_username: str | None = Field(default=None, description="MQTT user name (optional)")
    mqtt_password_file: Path | None = Field(default=None, description="file holding the MQTT password (optional)")
    sim_client_prefix: str = Field(default="nxem-sim", min_length=1, max_length=40,
                                   description="prefix of the simulators' MQTT client ids")
    sim_max_inflight: int = Field(default=1000, ge=1, le=65535,
                                  description="QoS 1 messages in flight per MQTT connection")
    sim_connections: int = Field(default=8, ge=1, le=1000,
                                 description="MQTT connections shared by a scenario's gateways")


#: Environment variables read by SimulatorSettings, with their meaning (for --help and docs).
ENV_VARS: Final[dict[str, str]] = {
    f"NXEM_{name.upper()}": f"{f.description} (default {f.default})"
    for name, f in SimulatorSettings.model_fields.items()
}


def load_settings() -> SimulatorSettings:
    """Build the settings from the environment; a bad value fails here, naming the variable."""
    try:
        return SimulatorSettings()
    except ValidationError as err:
        names = ", ".join(f"NXEM_{str(e['loc'][0]).upper()}" for e in err.errors())
        raise ConfigError(f"invalid simulator settings: {names}: {err}") from err
