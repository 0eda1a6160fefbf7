"""Applications, variants, constraints and policy: what the online optimizer is told.

A YAML file declares model prices and applications; ``TUNEPILOT_ONLINE_*``
environment variables override any field (nested with ``__``)::

    models:
      big:   {input_per_mtok: 10.0, output_per_mtok: 30.0}
      small: {input_per_mtok: 0.3, output_per_mtok: 1.2}
    apps:
      support-bot:
        baseline: big
        variants:
          - {id: big, model: big, temperature: 0.2, max_tokens: 1024}
          - {id: small, model: small, temperature: 0.2, max_tokens: 1024}
        constraints: {p95_latency_ms: 4000, min_quality: 0.7}
        context: [{attribute: prompt_length, bins: [500, 1200]}]

``TUNEPILOT_ONLINE_APPS__SUPPORT_BOT__CONSTRAINTS__P95_LATENCY_MS=3000`` would then
tighten the latency budget (environment names are case-insensitive, and ``-`` in an
app name is written ``_``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tunepilot._yaml import load_yaml
from tunepilot.exceptions import SpecError

__all__ = [
    "AppConfig",
    "Constraints",
    "ContextField",
    "ModelPrice",
    "OnlineConfig",
    "Policy",
    "Variant",
    "load_config",
]

_Name = Field(min_length=1, max_length=200)


class ModelPrice(BaseModel):
    """Prices of one model in USD per million tokens.

    Example:
        >>> ModelPrice(input_per_mtok=0.15, output_per_mtok=0.6).cost(1000, 500)
        0.00045
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0.0, allow_inf_nan=False)
    output_per_mtok: float = Field(ge=0.0, allow_inf_nan=False)

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for one call with these token counts."""
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


class Variant(BaseModel):
    """One configuration of an application: model, sampling fields, prompt variant, extras.

    Example:
        >>> Variant(id="small-t0.2", model="small", temperature=0.2, max_tokens=512).model
        'small'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = _Name
    model: str = _Name
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    prompt: str | None = Field(default=None, max_length=200)
    extra: dict[str, str | int | float | bool] = {}


class Constraints(BaseModel):
    """Limits every promoted variant must keep; a breach during a rollout rolls it back.

    Example:
        >>> Constraints(max_cost_per_call=0.01, p95_latency_ms=3000, min_quality=0.7)
        Constraints(max_cost_per_call=0.01, p95_latency_ms=3000.0, min_quality=0.7)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_cost_per_call: float | None = Field(default=None, gt=0.0)
    p95_latency_ms: float | None = Field(default=None, gt=0.0)
    min_quality: float | None = Field(default=None, ge=0.0, le=1.0)


class ContextField(BaseModel):
    """A request attribute that splits traffic into segments with their own choice.

    Numeric attributes are cut at ``bins`` (``prompt_length`` with ``bins: [500]``
    gives ``prompt_length<500`` and ``prompt_length>=500``); without ``bins`` every
    distinct value is a segment, up to ``max_values`` (later values share ``other``).

    Example:
        >>> ContextField(attribute="prompt_length", bins=[500, 1500]).segment(720)
        'prompt_length[500,1500)'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str = _Name
    bins: list[float] | None = None
    values: list[str] | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _check(self) -> ContextField:
        if self.bins is not None and (not self.bins or sorted(set(self.bins)) != self.bins):
            raise ValueError(f"context {self.attribute!r}: bins must be a non-empty increasing list")
        if self.bins is not None and self.values is not None:
            raise ValueError(f"context {self.attribute!r}: give bins (numeric) or values, not both")
        return self

    def segment(self, value: str | int | float | bool | None) -> str:
        """The segment label of one attribute value (``"<name>=?"`` when it is missing)."""
        name = self.attribute
        if value is None:
            return f"{name}=?"
        if self.bins is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"{name}=?"
            edges = self.bins
            if value < edges[0]:
                return f"{name}<{_num(edges[0])}"
            for low, high in zip(edges, edges[1:]):
                if value < high:
                    return f"{name}[{_num(low)},{_num(high)})"
            return f"{name}>={_num(edges[-1])}"
        text = str(value)
        if self.values is not None and text not in self.values:
            return f"{name}=other"
        return f"{name}={text}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class Policy(BaseModel):
    """How cautiously an application's configuration is changed.

    Quality margins are in points of the [0, 1] quality score divided by 100, so
    ``margin=0.02`` tolerates a loss of 2 points.

    Example:
        >>> Policy(margin=0.01, gate_interval_s=600).canary_steps
        [0.05, 0.25, 0.5, 1.0]
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Literal["pareto", "bandit", "ab", "threshold"] = "pareto"
    margin: float = Field(default=0.02, ge=0.0, le=0.5,
                          description="Non-inferiority margin for quality (0.02 = 2 points).")
    min_gain: float = Field(default=0.01, ge=0.0, le=0.5,
                            description="Quality gain that justifies a change at equal cost.")
    min_saving: float = Field(default=0.05, ge=0.0, lt=1.0,
                              description="Relative cost saving that justifies a change.")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0,
                              description="P(non-inferior) to promote, and at the last gate.")
    step_confidence: float = Field(
        default=0.8, gt=0.5, lt=1.0,
        description="P(non-inferior) at the earlier gates, where little traffic gives little data.")
    guard_confidence: float = Field(
        default=0.999, gt=0.5, lt=1.0,
        description="P(inferior) that rolls back a leader; it is checked every gate interval.")
    gain_confidence: float = Field(default=0.99, gt=0.5, lt=1.0,
                                   description="Posterior probability needed for a quality gain.")
    error_margin: float = Field(default=0.01, ge=0.0, le=1.0,
                                description="Extra error rate tolerated (absolute).")
    min_samples: int = Field(default=50, ge=1,
                             description="Quality points per variant before a test may pass.")
    min_step_samples: int = Field(default=50, ge=1,
                                  description="New calls per canary step before its gate may pass.")
    explore: float = Field(default=0.15, ge=0.0, lt=1.0,
                           description="Largest share of traffic spent on exploration.")
    floor: float = Field(default=0.01, ge=0.0, lt=1.0,
                         description="Least share of traffic each live candidate keeps.")
    holdback: float = Field(default=0.05, ge=0.0, lt=1.0,
                            description="Share kept on the baseline once another variant leads.")
    canary_steps: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 1.0])
    gate_interval_s: float = Field(default=1800.0, gt=0.0)
    max_hold_gates: int = Field(default=8, ge=1,
                                description="Inconclusive gates in a row before a rollout is abandoned.")
    window_s: float = Field(default=4 * 3600.0, gt=0.0, description="Analysis window.")
    bucket_s: float = Field(default=300.0, gt=0.0, description="Time bucket of the windows.")
    retention_s: float = Field(default=24 * 3600.0, gt=0.0)
    cooldown_s: float = Field(default=6 * 3600.0, ge=0.0,
                              description="How long a rejected variant is left alone.")
    drift_alpha: float = Field(default=0.001, gt=0.0, lt=1.0)
    psi_threshold: float = Field(default=0.25, gt=0.0)
    anomaly_z: float = Field(default=3.5, gt=0.0)
    tune: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Numeric variant fields tuned by an Optuna study, with their ranges.",
    )
    max_tuned_variants: int = Field(default=8, ge=1)

    @model_validator(mode="after")
    def _check(self) -> Policy:
        steps = self.canary_steps
        if not steps or steps[-1] != 1.0 or any(not 0 < s <= 1 for s in steps) or sorted(steps) != steps:
            raise ValueError("canary_steps must increase within (0, 1] and end at 1.0, e.g. [0.05, 0.25, 0.5, 1.0]")
        if self.floor > self.explore:
            raise ValueError("floor must not exceed explore")
        for name, (low, high) in self.tune.items():
            if name not in ("temperature", "max_tokens"):
                raise ValueError(f"tune: only temperature and max_tokens can be tuned, not {name!r}")
            if not low < high:
                raise ValueError(f"tune.{name}: the range must be [low, high] with low < high")
        return self


class AppConfig(BaseModel):
    """One application: its variants, the baseline, constraints, context and policy.

    Example:
        >>> app = AppConfig(name="bot", baseline="big", variants=[
        ...     Variant(id="big", model="big"), Variant(id="small", model="small")])
        >>> app.variant("small").model
        'small'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = _Name
    variants: list[Variant] = Field(min_length=1)
    baseline: str = _Name
    constraints: Constraints = Constraints()
    context: list[ContextField] = Field(default_factory=list, max_length=4)
    policy: Policy = Policy()
    models: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Prices of this app's models (override the global ones)."
    )

    @model_validator(mode="after")
    def _check(self) -> AppConfig:
        ids = [v.id for v in self.variants]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"variant ids must be unique; repeated: {', '.join(twice)}")
        if self.baseline not in ids:
            raise ValueError(f"baseline {self.baseline!r} is not one of the variants: {', '.join(ids)}")
        return self

    def variant(self, variant_id: str) -> Variant:
        """The variant with this id.

        Raises:
            KeyError: no such variant.
        """
        for v in self.variants:
            if v.id == variant_id:
                return v
        raise KeyError(variant_id)

    def segment(self, attributes: dict[str, Any] | None) -> str:
        """The segment of a request with these attributes (``"*"`` without context)."""
        if not self.context:
            return "*"
        attributes = attributes or {}
        return "&".join(f.segment(attributes.get(f.attribute)) for f in self.context)


class OnlineConfig(BaseSettings):
    """Model prices and applications; ``TUNEPILOT_ONLINE_*`` variables override the file.

    Example:
        >>> config = OnlineConfig(apps={"bot": {"baseline": "a", "variants": [
        ...     {"id": "a", "model": "m"}]}})
        >>> config.apps["bot"].name
        'bot'
    """

    model_config = SettingsConfigDict(
        env_prefix="TUNEPILOT_ONLINE_", env_nested_delimiter="__", extra="forbid",
        case_sensitive=False,
    )

    models: dict[str, ModelPrice] = Field(default_factory=dict)
    apps: dict[str, AppConfig] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        # An app's name is its key in the file; environment keys arrive lower-cased
        # with '_' for '-', so an override lands on the app it names.
        if isinstance(data, dict) and isinstance(data.get("apps"), dict):
            apps: dict[str, Any] = {}
            for key, value in data["apps"].items():
                if isinstance(value, dict):
                    value = {**value}
                    value.setdefault("name", key)
                apps[key] = value
            data = {**data, "apps": apps}
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides what the file (passed as init values) says.
        return env_settings, init_settings

    def price(self, app: AppConfig, model: str) -> ModelPrice | None:
        """The prices of ``model`` for ``app``: the app's own, else the global ones."""
        return app.models.get(model) or self.models.get(model)


def _env_key(name: str) -> str:
    return name.lower().replace("-", "_")


def load_config(path: str | Path) -> OnlineConfig:
    """Read an online-optimizer YAML file; ``TUNEPILOT_ONLINE_*`` variables override it.

    Raises:
        SpecError: the file is missing, not YAML, or a field is invalid (named in the message).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the file ({exc.strerror})") from None
    data = load_yaml(text, source=str(path)) or {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the top level must be a mapping with 'models' and 'apps'")
    apps = data.get("apps")
    if isinstance(apps, dict):
        # Key apps as the environment spells them so overrides merge into the right one.
        renamed: dict[str, Any] = {}
        for key, value in apps.items():
            if isinstance(value, dict):
                value = {"name": str(key), **value}
            renamed[_env_key(str(key))] = value
        data = {**data, "apps": renamed}
    try:
        config = OnlineConfig(**data)
    except ValidationError as exc:
        raise SpecError(f"{path}: {format_validation(exc)}") from None
    return config.model_copy(update={"apps": {a.name: a for a in config.apps.values()}})


def format_validation(exc: ValidationError) -> str:
    """One line per problem: the field's dotted path and what is wrong with it."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        lines.append(f"{where}: {error['msg']}")
    return "; ".join(lines)
