"""Jinja2 templates with autoescape on for every file, and the filters pages use."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import jinja2
import yaml
from fastapi.responses import HTMLResponse

from tunepilot.server.web._csrf import current_token


def fmt_value(value: Any) -> str:
    """A metric value for people: 6 significant digits, ``–`` when absent."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)


def query(base: dict[str, Any], **changes: Any) -> str:
    """``?a=1&b=2`` from ``base`` with ``changes``; ``None`` values are left out."""
    merged = {**base, **changes}
    return "?" + urlencode({k: v for k, v in merged.items() if v not in (None, "")})


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tunepilot.server.web", "templates"),
        # Every template, whatever its name: user and LLM text is escaped everywhere.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(value=fmt_value, seconds=fmt_seconds, yaml=to_yaml)
    env.globals.update(query=query, csrf_token=current_token)
    return env


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The template ``name`` as an HTML response."""
    html = environment().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code)
