"""Which installed Ollama model ``"auto"`` picks (servers and keys: test_factory.py)."""

from __future__ import annotations

from typing import Any

from tunepilot.llm._auto import pick_ollama_model


def model(name: str, gigabytes: float, family: str = "llama", **extra: Any) -> dict[str, Any]:
    return {"name": name, "size": int(gigabytes * 1e9),
            "details": {"family": family, "families": [family]}, **extra}


def test_the_largest_model_that_fits_a_16_gb_gpu() -> None:
    installed = [model("llama3.2:3b", 2.0), model("qwen2.5:14b", 9.0), model("qwen2.5:32b", 20.0)]
    assert pick_ollama_model(installed) == "qwen2.5:14b"


def test_the_smallest_when_every_model_is_large() -> None:
    installed = [model("llama3.3:70b", 42.5), model("qwen2.5:32b", 20.0)]
    assert pick_ollama_model(installed) == "qwen2.5:32b"


def test_a_loaded_model_first_whatever_its_size() -> None:
    installed = [model("qwen2.5:7b", 4.7), model("llama3.3:70b", 42.5)]
    assert pick_ollama_model(installed, [{"name": "llama3.3:70b"}]) == "llama3.3:70b"


def test_never_an_embedding_or_a_cloud_model() -> None:
    installed = [
        model("nomic-embed-text:latest", 0.3, family="nomic-bert"),
        model("mxbai-embed-large:latest", 0.7),
        model("all-minilm:latest", 0.05, family="bert"),
        model("gpt-oss:120b-cloud", 0.0, remote_host="https://ollama.com:443"),
    ]
    loaded = [{"name": "nomic-embed-text:latest"}]
    assert pick_ollama_model(installed, loaded) is None
    assert pick_ollama_model([*installed, model("gemma3:4b", 3.3)], loaded) == "gemma3:4b"


def test_entries_of_an_unexpected_shape_are_passed_over() -> None:
    installed: list[dict[str, Any]] = [
        {"name": None}, {"size": 1}, {"name": "phi4:14b", "size": "9"},
    ]
    assert pick_ollama_model(installed, [{"name": ["phi4:14b"]}]) == "phi4:14b"
