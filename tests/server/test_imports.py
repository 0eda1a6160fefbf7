"""The server extra is optional: ``import tunepilot`` works without it, the server says what to install."""

from __future__ import annotations

import subprocess
import sys

# Importing a module set to None in sys.modules raises ImportError, as if not installed.
WITHOUT_FASTAPI = """
import sys
sys.modules["fastapi"] = None
import tunepilot, tunepilot.sdk, tunepilot.space
try:
    import tunepilot.server
except ImportError as exc:
    print(exc)
"""


def test_the_server_without_its_extra_names_the_extra() -> None:
    result = subprocess.run([sys.executable, "-c", WITHOUT_FASTAPI], capture_output=True,
                            text=True, timeout=120, check=True)
    assert "the sweep server needs fastapi" in result.stdout
    assert "pip install 'tunepilot[server]'" in result.stdout


def test_import_tunepilot_does_not_load_the_server() -> None:
    code = "import tunepilot, sys; print('fastapi' in sys.modules, 'tunepilot.server' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.split() == ["False", "False"]
