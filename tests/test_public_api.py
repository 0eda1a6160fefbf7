"""The public surface of ``tunepilot``: it only changes on purpose."""

from __future__ import annotations

import subprocess
import sys

import tunepilot

PUBLIC = ["LLMSampler", "LLMStats", "SearchSpace", "TunepilotError", "__version__"]


def test_all_is_pinned() -> None:
    assert tunepilot.__all__ == PUBLIC
    assert sorted(tunepilot.__all__) == tunepilot.__all__


def test_every_public_name_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from tunepilot import *", namespace)
    for name in PUBLIC:
        assert getattr(tunepilot, name) is namespace[name]
    assert isinstance(tunepilot.__version__, str)
    assert issubclass(tunepilot.TunepilotError, Exception)


def test_import_does_not_load_llm_vendor_libraries() -> None:
    result = subprocess.run(
        [sys.executable, "-c",
         "import tunepilot, sys; print('litellm' in sys.modules, 'llama_cpp' in sys.modules)"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert result.stdout.split() == ["False", "False"]
