"""Turn a model string into a ready backend: ``"auto"``, ``"local"``, ``"local:/x.gguf"`` or a
LiteLLM model."""

from __future__ import annotations

import logging
import os

from tunepilot.exceptions import LLMConfigError
from tunepilot.llm._base import Backend

_logger = logging.getLogger("tunepilot.llm")


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

    ``"auto"`` picks, in order: the OpenAI-compatible server at ``api_base`` or
    ``TUNEPILOT_LLM_BASE`` (its first listed model; ``TUNEPILOT_LLM_API_KEY`` is its key
    if it needs one), Ollama at ``OLLAMA_HOST`` (127.0.0.1:11434 by default: the model
    it has loaded, else the largest installed one up to 10 GB), a hosted model whose
    key is set (``OPENAI_API_KEY``: ``openai/gpt-4.1-mini``, ``ANTHROPIC_API_KEY``:
    ``anthropic/claude-haiku-4-5``, ``GEMINI_API_KEY``: ``gemini/gemini-2.5-flash``),
    else the embedded model. Servers must answer within a second. The choice and the
    reason are logged in one line at WARNING on the ``tunepilot.llm`` logger, which
    ``tunepilot run`` and plain scripts show.

    Args:
        model: ``"auto"``, ``"local"`` (the embedded SmolLM2 model),
            ``"local:/path/to/model.gguf"``, a LiteLLM model string such as
            ``"openai/gpt-4.1-mini"`` or ``"ollama/llama3.1"``, or any object
            implementing :class:`Backend`.
        timeout: seconds one answer may take.
        max_retries: retries after a timeout, a 429 or a 5xx.
        cache_dir: folder of the on-disk response cache; ``None`` disables it.
        api_base: base URL of an OpenAI-compatible server (vLLM, llama.cpp server, ...).
        seed: seeds the retry jitter.

    Raises:
        LLMConfigError: ``model`` is empty or of the wrong type, or ``"auto"`` found
            nothing but the embedded model and it is not installed.

    Example:
        .. code-block:: python

            from tunepilot.llm import make_backend

            backend = make_backend("auto", timeout=30)  # logs "model auto: ..."
            print(backend.name)
    """
    from tunepilot.llm._cache import CachedBackend
    from tunepilot.llm._retry import RetryingBackend

    backend: Backend
    if isinstance(model, str):
        spec = model.strip()
        if not spec:
            raise LLMConfigError(
                "model is empty; use 'auto', 'local', 'local:/path/to/model.gguf' or a "
                "LiteLLM model string such as 'openai/gpt-4.1-mini'"
            )
        api_key: str | None = None
        if spec == "auto":
            spec, api_base, api_key = _resolve_auto(api_base)
        if spec == "local" or spec.startswith("local:"):
            from tunepilot.llm._local import LocalBackend

            path = spec.partition(":")[2] or None
            backend = LocalBackend(path, timeout=timeout)
        else:
            from tunepilot.llm._litellm import LiteLLMBackend

            backend = LiteLLMBackend(spec, api_base=api_base, api_key=api_key, timeout=timeout)
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


def _resolve_auto(api_base: str | None) -> tuple[str, str | None, str | None]:
    """``(model string, api_base, api_key)`` that ``"auto"`` stands for now, said in the log."""
    from tunepilot.llm._auto import choose_model
    from tunepilot.llm._local import check_local

    choice = choose_model(api_base=api_base)
    if choice.model == "local":
        try:
            check_local()
        except LLMConfigError as exc:
            raise LLMConfigError(
                f"model 'auto' found nothing to use ({choice.why}) and {exc}; or start "
                "Ollama, set TUNEPILOT_LLM_BASE to an OpenAI-compatible server, or set an "
                "API key such as OPENAI_API_KEY"
            ) from None
    _logger.warning("model auto: %s", choice.summary)
    return choice.model, choice.api_base, choice.api_key
