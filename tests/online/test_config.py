"""Online config: YAML, environment overrides, validation messages, segments."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunepilot.exceptions import SpecError
from tunepilot.online import AppConfig, ContextField, ModelPrice, Policy, Variant, load_config

YAML = """
models:
  big: {input_per_mtok: 10.0, output_per_mtok: 30.0}
apps:
  support-bot:
    baseline: big
    variants:
      - {id: big, model: big, temperature: 0.2, max_tokens: 1024}
      - {id: small, model: small, prompt: concise}
    constraints: {p95_latency_ms: 4000, min_quality: 0.7}
    context: [{attribute: prompt_length, bins: [500, 1200]}]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "online.yaml"
    path.write_text(text)
    return path


def test_yaml_loads_with_names_prices_and_environment_overrides(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEPILOT_ONLINE_APPS__SUPPORT_BOT__CONSTRAINTS__P95_LATENCY_MS", "3000")
    monkeypatch.setenv("TUNEPILOT_ONLINE_APPS__SUPPORT_BOT__POLICY__MARGIN", "0.01")
    config = load_config(_write(tmp_path, YAML))
    app = config.apps["support-bot"]
    assert app.name == "support-bot"
    assert app.constraints.p95_latency_ms == 3000.0  # the environment wins over the file
    assert app.constraints.min_quality == 0.7
    assert app.policy.margin == 0.01
    price = config.price(app, "big")
    assert price is not None and price.cost(1000, 1000) == pytest.approx(0.04)
    assert config.price(app, "small") is None


def test_bad_fields_are_named_with_the_fix(tmp_path: Path) -> None:
    bad = YAML.replace("baseline: big", "baseline: huge")
    with pytest.raises(SpecError, match="baseline 'huge' is not one of the variants: big, small"):
        load_config(_write(tmp_path, bad))
    with pytest.raises(SpecError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_config(_write(tmp_path, "apps: [unclosed"))


def test_duplicate_variant_ids_and_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="repeated: a"):
        AppConfig(name="x", baseline="a", variants=[Variant(id="a", model="m"), Variant(id="a", model="n")])
    with pytest.raises(ValueError, match="end at 1.0"):
        Policy(canary_steps=[0.1, 0.5])
    with pytest.raises(ValueError, match="only temperature and max_tokens"):
        Policy(tune={"top_p": (0.1, 0.9)})


def test_segments_by_bins_and_by_values() -> None:
    length = ContextField(attribute="prompt_length", bins=[500, 1500])
    assert [length.segment(v) for v in (10, 500, 1499, 1500, None, "long")] == [
        "prompt_length<500", "prompt_length[500,1500)", "prompt_length[500,1500)",
        "prompt_length>=1500", "prompt_length=?", "prompt_length=?"]
    category = ContextField(attribute="category", values=["code", "chat"])
    assert category.segment("code") == "category=code"
    assert category.segment("poetry") == "category=other"
    app = AppConfig(name="x", baseline="a", variants=[Variant(id="a", model="m")],
                    context=[length, category])
    assert app.segment({"prompt_length": 20, "category": "chat"}) == "prompt_length<500&category=chat"
    assert AppConfig(name="y", baseline="a", variants=[Variant(id="a", model="m")]).segment({}) == "*"


def test_model_price_cost() -> None:
    assert ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0).cost(1_000_000, 500_000) == 2.0
