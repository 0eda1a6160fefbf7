"""Turn a model string into a ready backend: ``"local"``, ``"local:/x.gguf"`` or a LiteLLM model."""

from __future__ import annotations

import os

from tunepilot.exceptions import LLMConfigError
from tunepilot.llm._base import Backend


def make_backend(
    model: str | Backend,
    *,
    timeout: float = 60.0,
    max_retries: int = 2,
    cache_dir: str | os.PathLike[str] | None = None,
    api_base: str | None = None,
    seed: int | None = None,
) -> Backend:
    """Build the backend for ``model``.

    Model strings get bounded retries with jittered backoff; a ``Backend`` instance is
    used as given. With ``cache_dir``, answers are cached on disk by prompt hash, so a
    seeded run can be replayed.

    Args:
        model: ``"local"`` (the embedded SmolLM2 model), ``"local:/path/to/model.gguf"``,
            a LiteLLM model string such as ``"openai/gpt-4.1-mini"`` or
            ``"ollama/llama3.1"``, or any object implementing :class:`Backend`.
        timeout: seconds one answer may take.
        max_retries: retries after a timeout, a 429 or a 5xx.
        cache_dir: folder of the on-disk response cache; ``None`` disables it.
        api_base: base URL of an OpenAI-compatible server (vLLM, llama.cpp server, ...).
        seed: seeds the retry jitter.

    Raises:
        LLMConfigError: ``model`` is empty or of the wrong type.
    """
    from tunepilot.llm._cache import CachedBackend
    from tunepilot.llm._retry import RetryingBackend

    backend: Backend
    if isinstance(model, str):
        spec = model.strip()
        if not spec:
            raise LLMConfigError(
                "model is empty; use 'local', 'local:/path/to/model.gguf' or a LiteLLM "
                "model string such as 'openai/gpt-4.1-mini'"
            )
        if spec == "local" or spec.startswith("local:"):
            from tunepilot.llm._local import LocalBackend

            path = spec.partition(":")[2] or None
            backend = LocalBackend(path, timeout=timeout)
        else:
            from tunepilot.llm._litellm import LiteLLMBackend

            backend = LiteLLMBackend(spec, api_base=api_base, timeout=timeout)
        backend = RetryingBackend(backend, max_retries=max_retries, seed=seed)
    elif isinstance(model, Backend):
        backend = model
    else:
        raise LLMConfigError(
            f"model must be a model string or a Backend, got {type(model).__name__}"
        )
    if cache_dir is not None:
        backend = CachedBackend(backend, cache_dir)
    return backend
