"""Bounds on what a sweep config may hold before it is stored.

A config is stored once and read back by every listing, page and agent, so its
size is checked when it comes in: its JSON size (``max_config_bytes``) and its
values (``max_config_leaves``: numbers, strings, booleans and nulls, at any depth).
"""

from __future__ import annotations

import json
from typing import Any

from tunepilot.exceptions import SearchSpaceError
from tunepilot.server._settings import Settings


def check_config_size(config: Any, settings: Settings) -> None:
    """Refuse a config over the limits of ``settings``.

    Raises:
        SearchSpaceError: too many values, or too many bytes as JSON; the message
            says the limit and the variable that raises it.
    """
    leaves = 0
    stack = [config]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        else:
            leaves += 1
            if leaves > settings.max_config_leaves:
                raise SearchSpaceError(
                    f"the sweep config holds more than {settings.max_config_leaves:,} values; "
                    "make it smaller, or raise the limit (TUNEPILOT_MAX_CONFIG_LEAVES)")
    size = len(json.dumps(config, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > settings.max_config_bytes:
        raise SearchSpaceError(
            f"the sweep config is {size:,} bytes as JSON, more than "
            f"{settings.max_config_bytes:,}; make it smaller, or raise the limit "
            "(TUNEPILOT_MAX_CONFIG_BYTES)")
