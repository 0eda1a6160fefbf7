"""Server settings, read from ``TUNEPILOT_*`` environment variables or given in code."""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB = "sqlite:///tunepilot.db"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_db_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs that name no driver (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Settings(BaseSettings):
    """Everything the sweep server can be told, from ``TUNEPILOT_<NAME>`` variables.

    One settings object is shared by every part mounted in the app (sweeps now, the
    dashboard and the online optimizer later). Secrets come only from the
    environment or from code, never from a file in the repository.

    Example:
        .. code-block:: python

            from tunepilot.server import Settings

            settings = Settings(db="sqlite:///sweeps.db", heartbeat_interval=2.0)
            assert settings.heartbeat_timeout == 4.0
    """

    model_config = SettingsConfigDict(env_prefix="TUNEPILOT_", extra="ignore")

    db: str = Field(default=DEFAULT_DB, min_length=1, description="SQLAlchemy database URL.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    token: SecretStr | None = Field(
        default=None, description="Bearer token every request must carry (TUNEPILOT_TOKEN)."
    )
    heartbeat_interval: float = Field(
        default=5.0, gt=0, description="Seconds between an agent's heartbeats."
    )
    heartbeat_timeout_factor: float = Field(
        default=2.0, ge=1.0,
        description="A run is lost after this many heartbeat intervals without one.",
    )
    max_retries: int = Field(
        default=2, ge=0, description="How often a lost run's configuration is queued again."
    )
    reaper: bool = Field(default=True, description="Run the lost-run reaper in this process.")
    max_page_size: int = Field(default=1000, ge=1)

    @property
    def db_url(self) -> str:
        """The database URL with a psycopg 3 driver for PostgreSQL."""
        return normalize_db_url(self.db)

    @property
    def heartbeat_timeout(self) -> float:
        """Seconds without a heartbeat after which a run counts as lost."""
        return self.heartbeat_interval * self.heartbeat_timeout_factor

    @property
    def reaper_period(self) -> float:
        """How often the reaper looks; a lost run is failed within timeout + this."""
        return self.heartbeat_interval / 4

    @property
    def auth_token(self) -> str | None:
        """The configured token's value, if any."""
        return self.token.get_secret_value() if self.token is not None else None
