"""Exceptions raised by tunepilot.

Every error a user can trigger derives from :class:`TunepilotError` and says what to
do about it. The tree::

    TunepilotError
    ├── SearchSpaceError          a search space or a parameter definition is invalid
    ├── SpecError                 a YAML spec is invalid (file, field and fix in the message)
    ├── ObjectiveError            the objective named in a spec cannot be imported or called
    ├── SweepError                the sweep server refused or failed a request
    │   ├── NotFoundError         no such sweep, run or token
    │   ├── ConflictError         not possible in the current state (``reason`` says why)
    │   └── DatabaseError         the database is unreachable, locked or not migrated
    ├── ClientError               the SDK could not get an answer from the sweep server
    ├── LogValueError             a value given to log() or summary cannot be stored
    └── LLMError                  talking to a language model failed
        ├── LLMConfigError        bad model string, missing extra or API key (not retried)
        ├── LLMRequestError       the provider rejected the request (not retried)
        ├── LLMTimeoutError       no answer within the timeout (retried)
        ├── LLMRateLimitError     HTTP 429 from the provider (retried)
        ├── LLMServerError        HTTP 5xx or a broken connection (retried)
        └── LLMOutputError        the answer is not JSON of the requested shape

``LLMError.retryable`` tells whether a bounded retry may help.
"""

from __future__ import annotations


class TunepilotError(Exception):
    """Root of every error tunepilot raises on purpose."""


class SearchSpaceError(TunepilotError, ValueError):
    """A search space, a parameter definition or a configuration is invalid."""


class SpecError(TunepilotError, ValueError):
    """A study spec is invalid."""


class ObjectiveError(TunepilotError):
    """The objective function cannot be imported or called."""


class SweepError(TunepilotError):
    """The sweep server refused or failed a request."""


class NotFoundError(SweepError, LookupError):
    """No sweep, run or token has the given id."""


class ConflictError(SweepError):
    """The request is not possible in the current state; ``reason`` is a short code.

    Reasons include ``paused``, ``not_started``, ``finished``, ``canceled``, ``failed``,
    ``run_cap_reached``, ``grid_exhausted`` and ``run_not_running``.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class DatabaseError(SweepError):
    """The database is unreachable, locked, or its schema is not migrated."""


class ClientError(TunepilotError):
    """The SDK could not get a usable answer from the sweep server.

    ``status`` is the HTTP status when the server answered, ``reason`` its reason code.
    """

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class LogValueError(TunepilotError, ValueError):
    """A value given to the SDK's ``log()`` or ``summary`` is not one the server can store."""


class LLMError(TunepilotError):
    """Talking to a language model failed."""

    retryable: bool = False


class LLMConfigError(LLMError):
    """The backend is misconfigured: unknown model, missing extra, missing API key."""


class LLMRequestError(LLMError):
    """The provider rejected the request as invalid."""


class LLMTimeoutError(LLMError):
    """The model did not answer within the timeout."""

    retryable = True


class LLMRateLimitError(LLMError):
    """The provider answered HTTP 429."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMServerError(LLMError):
    """The provider failed (HTTP 5xx) or the connection broke."""

    retryable = True


class LLMOutputError(LLMError):
    """The model's answer is not JSON of the requested shape."""

    def __init__(self, message: str, *, text: str = "") -> None:
        super().__init__(message)
        self.text = text


__all__ = [
    "ClientError",
    "ConflictError",
    "DatabaseError",
    "LLMConfigError",
    "LLMError",
    "LLMOutputError",
    "LLMRateLimitError",
    "LLMRequestError",
    "LLMServerError",
    "LLMTimeoutError",
    "NotFoundError",
    "ObjectiveError",
    "SearchSpaceError",
    "SpecError",
    "SweepError",
    "TunepilotError",
]
