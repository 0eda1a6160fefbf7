"""A backend for every provider LiteLLM knows: OpenAI, Anthropic, Ollama, compatible servers."""

from __future__ import annotations

import copy
import email.utils
import json
import math
import os
import re
import time
from types import ModuleType
from typing import Any

from tunepilot._redact import redact
from tunepilot.exceptions import (
    LLMConfigError,
    LLMError,
    LLMRateLimitError,
    LLMRequestError,
    LLMServerError,
    LLMTimeoutError,
)
from tunepilot.llm._base import Completion, Message, Usage

# Arguments the backend sets itself; accepting them in **completion_kwargs would
# silently override the Backend contract (or our retry policy).
_RESERVED_KWARGS = frozenset(
    {
        "model",
        "messages",
        "response_format",
        "temperature",
        "seed",
        "max_tokens",
        "timeout",
        "num_retries",
        "max_retries",
        "api_key",
        "api_base",
        "stream",
    }
)

# Where LiteLLM reads each provider's key; others follow the PROVIDER_API_KEY pattern.
_KEY_ENV_VARS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "azure": "AZURE_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
}

# Providers that speak OpenAI's API to a server of the user's choosing (api_base).
_OPENAI_COMPATIBLE = frozenset({"openai", "hosted_vllm", "lm_studio"})

_SCHEMA_NAME_RE = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_DETAIL_CHARS = 300


def _import_litellm() -> ModuleType:
    # Without this, importing litellm fetches a price map from the internet and
    # stalls for a long time on machines without network access.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError as exc:  # pragma: no cover - litellm is a core dependency
        raise LLMConfigError(
            "LiteLLMBackend needs the litellm package: pip install 'litellm>=1.60'"
        ) from exc
    # Otherwise every failed call prints a "Give Feedback / Get Help" banner to stdout;
    # litellm's own Router turns it off the same way.
    litellm.suppress_debug_info = True
    return litellm


class LiteLLMBackend:
    """A language model reached through LiteLLM, addressed by a model string.

    Any provider LiteLLM supports works: ``openai/gpt-4.1-mini``,
    ``anthropic/claude-sonnet-4-20250514``, ``ollama/llama3.1``, or any
    OpenAI-compatible server (vLLM, llama.cpp, LM Studio) as ``openai/<model>`` with
    ``api_base``. Where the provider has a structured-output mode the JSON schema is
    sent as ``response_format``; otherwise JSON mode is requested and the schema is
    appended to the last message.

    The backend makes exactly one HTTP attempt per call; wrap it in
    :class:`~tunepilot.llm.RetryingBackend` for retries. Provider errors become
    :mod:`tunepilot.exceptions`: timeouts :class:`LLMTimeoutError`, HTTP 429
    :class:`LLMRateLimitError` (with ``retry_after``), HTTP 5xx and broken connections
    :class:`LLMServerError`, a rejected key :class:`LLMConfigError`, any other
    rejected request :class:`LLMRequestError`.

    Args:
        model: A LiteLLM model string, ``provider/model``.
        api_base: Base URL of the server, e.g. ``http://127.0.0.1:8000/v1``.
        api_key: The API key. When omitted, LiteLLM reads the provider's environment
            variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...). Keys are never
            read from files.
        timeout: Seconds to wait for one answer.
        **completion_kwargs: Passed to ``litellm.completion`` on every call, e.g.
            ``top_p`` or ``api_version``. ``drop_params`` defaults to ``True`` so that
            options a provider lacks (``seed`` on Anthropic) are dropped, not refused.

    Raises:
        LLMConfigError: The model string names no known provider, a required API key
            is missing, or an argument is invalid.

    Example:
        .. code-block:: python

            from tunepilot.llm import LiteLLMBackend, RetryingBackend

            backend = RetryingBackend(LiteLLMBackend("openai/gpt-4.1-mini", timeout=30))
            answer = backend.complete(
                [{"role": "user", "content": "Propose a learning rate as JSON."}],
                schema={"type": "object", "properties": {"lr": {"type": "number"}}},
            )
            print(answer.json(), answer.usage.cost_usd)
    """

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        **completion_kwargs: Any,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise LLMConfigError(
                f"model must be a LiteLLM model string such as 'openai/gpt-4.1-mini', got {model!r}"
            )
        if not timeout > 0:
            raise LLMConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
        reserved = sorted(_RESERVED_KWARGS.intersection(completion_kwargs))
        if reserved:
            raise LLMConfigError(
                f"LiteLLMBackend sets {', '.join(reserved)} itself; pass them as "
                "constructor or complete() arguments, and retries through RetryingBackend"
            )
        self.name = model
        self.model = model
        self.api_base = api_base
        self.timeout = float(timeout)
        self.completion_kwargs = completion_kwargs
        self._api_key = api_key

        litellm = _import_litellm()
        try:
            _, provider, _, _ = litellm.get_llm_provider(model, api_base=api_base)
        except Exception as exc:
            raise LLMConfigError(
                f"LiteLLM does not know the provider of {model!r}: prefix the model with "
                "its provider, e.g. 'openai/gpt-4.1-mini', 'anthropic/claude-sonnet-4-20250514' "
                "or 'ollama/llama3.1' (see https://docs.litellm.ai/docs/providers)"
            ) from exc
        self.provider: str = provider
        self._check_key(litellm)
        self.structured_output = self._supports_json_schema(litellm)

    def __repr__(self) -> str:
        # Hand-written so that the API key never ends up in logs or tracebacks.
        base = "" if self.api_base is None else f", api_base={redact(self.api_base)!r}"
        return f"LiteLLMBackend({self.model!r}{base}, timeout={self.timeout!r})"

    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any],
        temperature: float = 0.7,
        seed: int | None = None,
        max_tokens: int = 512,
    ) -> Completion:
        """Answer ``messages`` with text that should be JSON matching ``schema``.

        Raises:
            LLMTimeoutError: No answer within ``timeout``.
            LLMRateLimitError: The provider answered HTTP 429.
            LLMServerError: HTTP 5xx, a broken connection, or another provider failure.
            LLMConfigError: The provider rejected the API key.
            LLMRequestError: The provider rejected the request.
        """
        litellm = _import_litellm()
        request: dict[str, Any] = {"drop_params": True, **self.completion_kwargs}
        if self.structured_output:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(schema),
                    "schema": schema,
                    "strict": _is_strict_compatible(schema),
                },
            }
        else:
            request["response_format"] = {"type": "json_object"}
            messages = _with_schema_instructions(messages, schema)
        if seed is not None:
            request["seed"] = seed
        if self.api_base is not None:
            request["api_base"] = self.api_base
        if self._api_key is not None:
            request["api_key"] = self._api_key

        start = time.perf_counter()
        try:
            response = litellm.completion(
                model=self.model,
                messages=messages,
                temperature=temperature,
                max_tokens=max_tokens,
                timeout=self.timeout,
                num_retries=0,
                **request,
            )
        except Exception as exc:
            raise self._map_error(litellm, exc) from exc
        latency = time.perf_counter() - start

        content = response.choices[0].message.content if response.choices else None
        usage = getattr(response, "usage", None)
        return Completion(
            text=content if isinstance(content, str) else "",
            usage=Usage(
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                cost_usd=_cost(litellm, response),
            ),
            model=getattr(response, "model", None) or self.model,
            latency_s=latency,
        )

    def _check_key(self, litellm: ModuleType) -> None:
        if self._api_key is not None:
            return
        try:
            missing = litellm.validate_environment(model=self.model, api_base=self.api_base)[
                "missing_keys"
            ]
        except Exception:
            return  # best effort; the call itself reports what is wrong
        # Only plain API keys: other providers (AWS, Vertex, Azure AD) have
        # credential chains that validate_environment cannot see.
        if missing and all(str(key).endswith("_API_KEY") for key in missing):
            # The OpenAI client insists on a key even for servers that check none.
            hint = "" if self.api_base is None else " (any value will do if the server needs none)"
            raise LLMConfigError(
                f"no API key for {self.model!r}: set {' or '.join(missing)} in the environment "
                f"or pass api_key= to LiteLLMBackend{hint}"
            )

    def _supports_json_schema(self, litellm: ModuleType) -> bool:
        # Self-hosted OpenAI-compatible servers accept json_schema, but their models
        # are missing from LiteLLM's model table, which would say no.
        if self.provider in _OPENAI_COMPATIBLE and self.api_base is not None:
            return True
        try:
            return bool(
                litellm.supports_response_schema(
                    model=self.model, custom_llm_provider=self.provider
                )
            )
        except Exception:
            return False

    def _key_env_var(self) -> str:
        return _KEY_ENV_VARS.get(self.provider, f"{self.provider.upper()}_API_KEY")

    def _map_error(self, litellm: ModuleType, exc: Exception) -> LLMError:
        # What the provider said may repeat the URL (userinfo and all) or the key.
        detail = redact(_detail(exc))
        where = self.model if self.api_base is None else f"{self.model} at {redact(self.api_base)}"
        status = getattr(exc, "status_code", None)
        if isinstance(exc, litellm.Timeout):
            return LLMTimeoutError(
                f"{where} did not answer within {self.timeout:g} s; raise timeout= if the "
                "model is slow"
            )
        if isinstance(exc, litellm.RateLimitError):
            return LLMRateLimitError(
                f"{where} is rate limited (HTTP 429): {detail}", retry_after=_retry_after(exc)
            )
        if isinstance(exc, litellm.AuthenticationError) or status in (401, 403):
            return LLMConfigError(
                f"{where} rejected the API key (HTTP {status or 401}): set "
                f"{self._key_env_var()} in the environment or pass api_key= to "
                f"LiteLLMBackend ({detail})"
            )
        if isinstance(exc, litellm.ContextWindowExceededError):
            return LLMRequestError(
                f"the prompt is longer than {self.model}'s context window; lower the "
                f"context's token budget ({detail})"
            )
        if isinstance(exc, (litellm.BadRequestError, litellm.NotFoundError)) or (
            isinstance(status, int) and 400 <= status < 500
        ):
            return LLMRequestError(f"{where} rejected the request: {detail}")
        if isinstance(exc, litellm.APIConnectionError):
            return LLMServerError(f"could not reach {where}: {detail}")
        return LLMServerError(f"{where} failed: {detail}")


def _schema_name(schema: dict[str, Any]) -> str:
    # OpenAI requires ^[a-zA-Z0-9_-]{1,64}$ here.
    title = schema.get("title")
    name = _SCHEMA_NAME_RE.sub("_", title).strip("_")[:64] if isinstance(title, str) else ""
    return name or "response"


def _is_strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict mode accepts ``schema``: closed objects, all keys required."""
    if isinstance(schema, list):
        return all(_is_strict_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    is_object = schema.get("type") == "object" or "properties" in schema
    if is_object:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return False
        if not isinstance(properties, dict) or set(schema.get("required", [])) != set(properties):
            return False
    return all(_is_strict_compatible(value) for value in schema.values())


def _with_schema_instructions(messages: list[Message], schema: dict[str, Any]) -> list[Message]:
    instructions = (
        "Answer with a single JSON object, and nothing else, that matches this JSON schema:\n"
        + json.dumps(schema, sort_keys=True)
    )
    if not messages:
        return [{"role": "user", "content": instructions}]
    messages = copy.deepcopy(messages)
    last = messages[-1]
    last["content"] = f"{last.get('content', '')}\n\n{instructions}"
    return messages


def _retry_after(exc: Exception) -> float | None:
    # LiteLLM keeps the provider's headers on litellm_response_headers; the attached
    # httpx response is often a stand-in without them.
    sources = (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    )
    for raw in sources:
        try:
            headers = {str(k).lower(): str(v) for k, v in raw.items()} if raw else {}
            if "retry-after-ms" in headers:
                return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except (AttributeError, TypeError, ValueError):
            continue
        value = headers.get("retry-after")
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            continue
        return max(0.0, when.timestamp() - time.time())
    return None


def _cost(litellm: ModuleType, response: Any) -> float:
    # Unknown models (local servers, new releases) have no price; that is not an error.
    try:
        cost = float(litellm.completion_cost(completion_response=response))
    except Exception:
        return 0.0
    return cost if math.isfinite(cost) and cost >= 0.0 else 0.0


def _detail(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if len(text) > _MAX_DETAIL_CHARS:
        text = text[: _MAX_DETAIL_CHARS - 3] + "..."
    return text or type(exc).__name__
