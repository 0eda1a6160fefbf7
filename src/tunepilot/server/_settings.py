"""Server settings, read from ``TUNEPILOT_*`` environment variables or given in code."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tunepilot._yaml import YAML_MAX_DEPTH, YAML_MAX_NODES

DEFAULT_DB = "sqlite:///tunepilot.db"
#: Host names a loopback server answers to; any IP address is accepted too.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: A token for a server beyond loopback: at least this long, of this many distinct characters.
MIN_TOKEN_LENGTH = 32
MIN_TOKEN_DISTINCT = 10
MiB = 1024 * 1024


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_weakness(token: str) -> str | None:
    """Why ``token`` is too weak to guard a server beyond loopback, or ``None``."""
    if len(token) < MIN_TOKEN_LENGTH:
        return f"it is {len(token)} characters long"
    if len(set(token)) < MIN_TOKEN_DISTINCT:
        return f"it repeats {len(set(token))} different characters"
    return None


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

    The limits (``max_*``) bound the work one request can cause; each refusal says
    which variable raises it. ``SECURITY.md`` explains them.

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
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names requests may address, comma-separated; '*' allows any. "
        "Always allowed: localhost, any IP address, and the bound host. A name not listed "
        "is refused, which stops DNS rebinding.",
    )
    max_body_bytes: int = Field(
        default=4 * MiB, ge=1024, description="Largest request body, in bytes (413 beyond)."
    )
    max_decompressed_bytes: int = Field(
        default=32 * MiB, ge=1024,
        description="Largest OTLP body after gzip or deflate decompression (413 beyond).",
    )
    max_batch_items: int = Field(
        default=10_000, ge=1, le=10_000,
        description="Most events or OTLP spans in one request, counted before parsing.",
    )
    max_form_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Largest dashboard form, in bytes."
    )
    max_config_bytes: int = Field(
        default=256 * 1024, ge=1024,
        description="Largest sweep config, as JSON, in bytes (422 beyond).",
    )
    max_config_leaves: int = Field(
        default=10_000, ge=1, description="Most values (leaves) in a sweep config."
    )
    max_yaml_nodes: int = Field(
        default=YAML_MAX_NODES, ge=1,
        description="Most values a YAML document may expand to, aliases included.",
    )
    max_yaml_depth: int = Field(
        default=YAML_MAX_DEPTH, ge=1, description="Deepest nesting of a YAML document."
    )
    max_failed_auth: int = Field(
        default=20, ge=1,
        description="Failed logins or bearer tokens per client address and window; beyond "
        "it the address gets 429 until the window has passed.",
    )
    failed_auth_window: float = Field(
        default=60.0, gt=0, description="Seconds over which failed attempts are counted."
    )
    llm_model: str = Field(
        default="auto", min_length=1,
        description="The model llm and blend sweeps use unless they name another of "
        "llm_models; the operator's choice, with the operator's key (TUNEPILOT_LLM_MODEL).",
    )
    llm_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Further models a sweep may name, comma-separated (TUNEPILOT_LLM_MODELS). "
        "A sweep can choose among these and llm_model, never name another.",
    )
    llm_api_base: str | None = Field(
        default=None,
        description="The OpenAI-compatible server the operator's models are reached at; a "
        "sweep cannot set one (TUNEPILOT_LLM_API_BASE).",
    )
    llm_timeout: float = Field(
        default=60.0, gt=0, le=600, description="Seconds one model answer may take."
    )

    @property
    def allowed_llm_models(self) -> list[str]:
        """The models a sweep may name: the default one first, then the others."""
        return [self.llm_model, *(m for m in self.llm_models if m != self.llm_model)]

    @field_validator("allowed_hosts", "llm_models", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _strong_token_beyond_loopback(self) -> Settings:
        token = self.auth_token
        if token and not is_loopback(self.host):
            weakness = token_weakness(token)
            if weakness is not None:
                raise ValueError(
                    f"TUNEPILOT_TOKEN is too weak for a server on {self.host}: {weakness}; "
                    f"use at least {MIN_TOKEN_LENGTH} random characters (python -c "
                    "'import secrets; print(secrets.token_urlsafe(32))'), or a token from "
                    "'tunepilot token create'")
        return self

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
    def host_names(self) -> frozenset[str]:
        """Host names (lower case, no port) requests may address, besides IP addresses."""
        names = {*LOOPBACK_NAMES, self.host.strip("[]").lower()}
        names.update(h.strip().strip("[]").lower() for h in self.allowed_hosts)
        return frozenset(names)

    @property
    def auth_token(self) -> str | None:
        """The configured token's value, if any."""
        return self.token.get_secret_value() if self.token is not None else None
