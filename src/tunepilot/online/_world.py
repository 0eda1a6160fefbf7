"""Simulated worlds: the hidden ground truth the online optimizer is benchmarked in.

A world is a YAML data file (see ``worlds/default.yaml``): models with prices,
latency and error rates; configurations model x temperature x max_tokens x prompt
variant; an easy/medium/hard traffic mix; quality per model and difficulty with
modifiers per temperature and prompt; truncation at max_tokens; noisy, delayed
quality feedback on a share of calls; and changes during the run (quality drift, a
price change, a traffic-mix shift, a window without traffic).
"""

from __future__ import annotations

import itertools
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tunepilot._yaml import load_yaml
from tunepilot.exceptions import SpecError
from tunepilot.online._config import (
    AppConfig,
    Constraints,
    ContextField,
    ModelPrice,
    Policy,
    Variant,
    format_validation,
)

__all__ = ["Configuration", "World", "builtin_worlds", "load_world"]

Level = Literal["easy", "medium", "hard"]
DIFFICULTIES: tuple[Level, ...] = ("easy", "medium", "hard")
_PerDifficulty = dict[Level, float]


class WorldModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    latency_base_ms: float = Field(gt=0)
    latency_per_token_ms: float = Field(ge=0)
    error_rate: float = Field(ge=0, le=1)


class Difficulty(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    share: float = Field(ge=0, le=1)
    input_tokens: tuple[float, float]
    output_tokens: float = Field(gt=0)


class Prompt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    output_factor: float = Field(gt=0)
    quality: _PerDifficulty


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    share: float = Field(default=0.1, gt=0, le=1)
    delay_mean_s: float = Field(default=600.0, ge=0)
    noise_sd: float = Field(default=0.05, ge=0)


class Change(BaseModel):
    """Something that happens during the run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["drift", "price", "mix", "zero_traffic"]
    at_hours: float = Field(ge=0)
    to_hours: float | None = None  # zero_traffic: the end of the window
    model: str | None = None
    quality: dict[str, float] | None = None  # drift: quality added per difficulty
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    shares: dict[str, float] | None = None


class Configuration(BaseModel):
    """One configuration of the world, offered to the optimizer as a variant."""

    model_config = ConfigDict(frozen=True)

    model: str
    temperature: float
    max_tokens: int
    prompt: str

    @property
    def id(self) -> str:
        return f"{self.model}-t{self.temperature:g}-m{self.max_tokens}-{self.prompt}"


class World(BaseModel):
    """A hidden world: what happens when a configuration meets a request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    hours: float = Field(gt=0)
    rate_per_s: float = Field(gt=0)
    tick_s: float = Field(default=60.0, gt=0)
    quality_sd: float = Field(default=0.1, ge=0)
    feedback: Feedback = Feedback()
    truncation_quality: float = Field(default=0.5, ge=0, le=1)
    p99_latency_budget_ms: float = Field(gt=0)
    models: dict[str, WorldModel]
    difficulties: dict[Literal["easy", "medium", "hard"], Difficulty]
    quality: dict[str, _PerDifficulty]
    temperatures: dict[str, _PerDifficulty]
    max_tokens: list[int]
    prompts: dict[str, Prompt]
    premium: Configuration
    oracle_tolerance: float = Field(default=0.01, ge=0,
                                    description="Quality loss the oracle accepts (0.01 = 1 point).")
    app: dict[str, Any] = Field(default_factory=dict)
    changes: list[Change] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> World:
        if set(self.difficulties) != set(DIFFICULTIES):
            raise ValueError("difficulties must be easy, medium and hard")
        if abs(sum(d.share for d in self.difficulties.values()) - 1) > 1e-6:
            raise ValueError("difficulty shares must sum to 1")
        for model in self.models:
            if model not in self.quality:
                raise ValueError(f"quality: model {model!r} has no row")
        if self.premium not in self.configurations:
            raise ValueError("premium must be one of the configurations")
        for change in self.changes:
            if change.model is not None and change.model not in self.models:
                raise ValueError(f"changes: unknown model {change.model!r}")
        return self

    @cached_property
    def configurations(self) -> list[Configuration]:
        """Every model x temperature x max_tokens x prompt combination."""
        return [Configuration(model=m, temperature=float(t), max_tokens=k, prompt=p)
                for m, t, k, p in itertools.product(self.models, self.temperatures,
                                                    self.max_tokens, self.prompts)]

    def app_config(self, name: str = "sim") -> AppConfig:
        """The application as its owner would declare it: every configuration a variant."""
        variants = [Variant(id=c.id, model=c.model, temperature=c.temperature,
                            max_tokens=c.max_tokens, prompt=c.prompt) for c in self.configurations]
        extra = dict(self.app)
        return AppConfig(
            name=name, variants=variants, baseline=self.premium.id,
            constraints=Constraints.model_validate(extra.get("constraints", {})),
            context=[ContextField.model_validate(c) for c in extra.get("context", [])],
            policy=Policy.model_validate(extra.get("policy", {})),
            models={m: ModelPrice(input_per_mtok=w.input_per_mtok, output_per_mtok=w.output_per_mtok)
                    for m, w in self.models.items()},
        )

    # -- the state of the world at a time ------------------------------------------

    def state(self, t_hours: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """Quality per (model, difficulty), prices per (model, in/out), mix, traffic on."""
        models = list(self.models)
        quality = np.array([[self.quality[m][d] for d in DIFFICULTIES] for m in models])
        prices = np.array([[self.models[m].input_per_mtok, self.models[m].output_per_mtok]
                           for m in models])
        shares = np.array([self.difficulties[d].share for d in DIFFICULTIES])
        traffic = True
        for change in self.changes:
            if change.kind == "zero_traffic":
                if change.at_hours <= t_hours < (change.to_hours or change.at_hours):
                    traffic = False
                continue
            if t_hours < change.at_hours:
                continue
            if change.kind == "drift" and change.model is not None and change.quality:
                i = models.index(change.model)
                for j, d in enumerate(DIFFICULTIES):
                    quality[i, j] += change.quality.get(str(d), 0.0)
            elif change.kind == "price" and change.model is not None:
                i = models.index(change.model)
                if change.input_per_mtok is not None:
                    prices[i, 0] = change.input_per_mtok
                if change.output_per_mtok is not None:
                    prices[i, 1] = change.output_per_mtok
            elif change.kind == "mix" and change.shares:
                shares = np.array([change.shares.get(d, 0.0) for d in DIFFICULTIES])
                shares = shares / shares.sum()
        return quality, prices, shares, traffic

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        """Per-configuration lookup arrays for vectorized outcomes."""
        models, temps, prompts = list(self.models), list(self.temperatures), list(self.prompts)
        confs = self.configurations
        return {
            "model": np.array([models.index(c.model) for c in confs]),
            "temp_q": np.array([[self.temperatures[_tkey(self, c.temperature)][d] for d in DIFFICULTIES]
                                for c in confs]),
            "prompt_q": np.array([[self.prompts[c.prompt].quality[d] for d in DIFFICULTIES] for c in confs]),
            "out_factor": np.array([self.prompts[c.prompt].output_factor for c in confs]),
            "max_tokens": np.array([c.max_tokens for c in confs], dtype=float),
            "lat_base": np.array([self.models[c.model].latency_base_ms for c in confs]),
            "lat_tok": np.array([self.models[c.model].latency_per_token_ms for c in confs]),
            "err": np.array([self.models[c.model].error_rate for c in confs]),
            "out_mean": np.array([self.difficulties[d].output_tokens for d in DIFFICULTIES]),
            "in_mean": np.array([self.difficulties[d].input_tokens[0] for d in DIFFICULTIES]),
            "in_sd": np.array([self.difficulties[d].input_tokens[1] for d in DIFFICULTIES]),
            "_temps": np.array([temps.index(_tkey(self, c.temperature)) for c in confs]),
            "_prompts": np.array([prompts.index(c.prompt) for c in confs]),
        }

    def outcome(self, conf: np.ndarray, difficulty: np.ndarray, input_tokens: np.ndarray,
                noise: dict[str, np.ndarray], quality_table: np.ndarray, prices: np.ndarray
                ) -> dict[str, np.ndarray]:
        """Cost, latency, error, true quality and output tokens of requests under configurations.

        The same ``noise`` (common random numbers) gives every configuration the same luck,
        so counterfactual baselines are paired with what the optimizer served.
        """
        a = self.arrays
        model = a["model"][conf]
        need = a["out_mean"][difficulty] * a["out_factor"][conf] * np.exp(0.3 * noise["out"])
        truncated = need > a["max_tokens"][conf]
        out = np.minimum(need, a["max_tokens"][conf]).round()
        error = noise["err"] < a["err"][conf]
        out = np.where(error, 0.0, out)
        mean_q = quality_table[model, difficulty] + a["temp_q"][conf, difficulty] + a["prompt_q"][conf, difficulty]
        quality = np.clip(mean_q + self.quality_sd * noise["q"], 0.0, 1.0)
        quality = np.where(truncated, quality * self.truncation_quality, quality)
        quality = np.where(error, 0.0, quality)
        cost = (input_tokens * prices[model, 0] + out * prices[model, 1]) / 1e6
        latency = (a["lat_base"][conf] + a["lat_tok"][conf] * out) * np.exp(0.25 * noise["lat"])
        return {"cost": cost, "latency": latency, "error": error, "quality": quality, "out": out}

    def tables(self, quality_table: np.ndarray, prices: np.ndarray, *, samples: int = 20_000,
               seed: int = 12345) -> dict[str, np.ndarray]:
        """Expected quality, cost and p95 latency per (configuration, difficulty), by Monte Carlo."""
        rng = np.random.default_rng(seed)
        n_conf = len(self.configurations)
        a = self.arrays
        q = np.empty((n_conf, 3))
        c = np.empty((n_conf, 3))
        p95 = np.empty((n_conf, 3))
        for d in range(3):
            noise = {k: rng.standard_normal(samples) for k in ("out", "q", "lat")}
            noise["err"] = rng.random(samples)
            tokens = np.maximum(20, a["in_mean"][d] + a["in_sd"][d] * rng.standard_normal(samples)).round()
            diff = np.full(samples, d)
            for i in range(n_conf):
                o = self.outcome(np.full(samples, i), diff, tokens, noise, quality_table, prices)
                q[i, d] = o["quality"].mean()
                c[i, d] = o["cost"].mean()
                p95[i, d] = np.quantile(o["latency"], 0.95)
        return {"quality": q, "cost": c, "p95": p95}


def _tkey(world: World, temperature: float) -> str:
    for key in world.temperatures:
        if float(key) == temperature:
            return key
    raise KeyError(temperature)


def builtin_worlds() -> dict[str, Path]:
    """The worlds shipped with tunepilot, by name."""
    folder = resources.files("tunepilot.online") / "worlds"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def _raw(path: Path, shipped: dict[str, Path], depth: int = 0) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the file ({exc.strerror})") from None
    data = load_yaml(text, source=str(path)) or {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a world is a mapping (see worlds/default.yaml)")
    base = data.pop("base", None)
    if base is None:
        return data
    if str(base) not in shipped:
        raise SpecError(f"{path}: base {base!r} is not a shipped world ({', '.join(sorted(shipped))})")
    if depth > 5:
        raise SpecError(f"{path}: 'base' goes round in a circle")
    return {**_raw(shipped[str(base)], shipped, depth + 1), **data}


def load_world(source: str | Path) -> World:
    """A world from a YAML file, or a shipped world by name (``default``, ``aa``, ...).

    A file may say ``base: default`` (any shipped world) to start from it and change
    some keys; the keys it gives replace the base's whole.

    Raises:
        SpecError: no such file or world, not YAML, or an invalid field.
    """
    shipped = builtin_worlds()
    path = Path(source)
    if not path.exists():
        if str(source) in shipped:
            path = shipped[str(source)]
        else:
            raise SpecError(f"no world file {source!r} and no shipped world of that name; "
                            f"shipped: {', '.join(sorted(shipped))}")
    data = _raw(path, shipped)
    try:
        return World.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{path}: {format_validation(exc)}") from None
