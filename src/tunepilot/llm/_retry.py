"""Bounded retries with full-jitter exponential backoff around any backend."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from tunepilot.exceptions import LLMConfigError, LLMError, LLMRateLimitError
from tunepilot.llm._base import Backend, BackendWrapper, Completion, Message

logger = logging.getLogger("tunepilot.llm")


class RetryingBackend(BackendWrapper):
    """Retries a backend's transient failures: timeouts, HTTP 429 and 5xx.

    Only errors whose ``retryable`` is true are retried (see
    :mod:`tunepilot.exceptions`); the rest, and the last transient one once
    ``max_retries`` is spent, propagate unchanged. Before retry *n* (from 0) it sleeps a
    random time in ``[0, min(max_delay, base_delay * 2**n)]`` ("full jitter", so that
    parallel workers do not retry in lockstep), or the provider's ``Retry-After``
    (capped at ``max_delay``) after a rate limit. Each retry is logged at WARNING on
    the ``tunepilot.llm`` logger.

    Args:
        inner: The backend to call.
        max_retries: Retries after the first attempt; 0 disables retrying.
        base_delay: Upper bound of the first backoff, in seconds.
        max_delay: Upper bound of any backoff, in seconds.
        seed: Seeds the jitter, for reproducible delays.
        sleep: Waits a number of seconds; tests pass a recorder instead of ``time.sleep``.

    Attributes:
        attempts: Calls made to ``inner`` so far.
        retries: Of those, how many were retries.

    Example:
        .. code-block:: python

            from tunepilot.llm import LiteLLMBackend, RetryingBackend

            backend = RetryingBackend(LiteLLMBackend("openai/gpt-4.1-mini"), max_retries=3)
            answer = backend.complete(messages, schema=schema)
            print(backend.retries)
    """

    def __init__(
        self,
        inner: Backend,
        *,
        max_retries: int = 2,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        seed: int | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise LLMConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if not base_delay >= 0:
            raise LLMConfigError(f"base_delay must be >= 0 seconds, got {base_delay!r}")
        if not max_delay >= base_delay:
            raise LLMConfigError(
                f"max_delay must be >= base_delay ({base_delay!r}), got {max_delay!r}"
            )
        super().__init__(inner)
        self.max_retries = max_retries
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self.seed = seed
        self.sleep = sleep
        self.attempts = 0
        self.retries = 0
        self._rng = random.Random(seed)
        # Samplers may share one backend between worker threads.
        self._lock = threading.Lock()

    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any],
        temperature: float = 0.7,
        seed: int | None = None,
        max_tokens: int = 512,
    ) -> Completion:
        """Call ``inner.complete``, retrying transient errors; raise the last one if all fail."""
        retry = 0
        while True:
            with self._lock:
                self.attempts += 1
            try:
                return self.inner.complete(
                    messages,
                    schema=schema,
                    temperature=temperature,
                    seed=seed,
                    max_tokens=max_tokens,
                )
            except LLMError as exc:
                if not exc.retryable or retry >= self.max_retries:
                    raise
                delay = self._delay(retry, exc)
                retry += 1
                with self._lock:
                    self.retries += 1
                logger.warning(
                    "%s failed (%s: %s); retry %d of %d in %.2f s",
                    self.inner.name,
                    type(exc).__name__,
                    exc,
                    retry,
                    self.max_retries,
                    delay,
                )
            self.sleep(delay)

    def _delay(self, retry: int, exc: LLMError) -> float:
        if isinstance(exc, LLMRateLimitError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.max_delay)
        # The exponent is capped so that a huge max_retries cannot overflow a float.
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(retry, 60))
        with self._lock:
            return self._rng.uniform(0.0, ceiling)
