"""Settings every test shares."""

from __future__ import annotations

import pytest

#: What model="auto" looks at: a developer's own server or key must not change a test.
_AUTO_ENVIRONMENT = (
    "TUNEPILOT_LLM_BASE", "TUNEPILOT_LLM_API_KEY", "OLLAMA_HOST",
    "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
)


@pytest.fixture(autouse=True)
def _no_model_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _AUTO_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
