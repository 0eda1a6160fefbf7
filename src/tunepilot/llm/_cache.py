"""An on-disk response cache, so that a study can be replayed without calling the model."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from tunepilot.exceptions import LLMConfigError
from tunepilot.llm._base import Backend, BackendWrapper, Completion, Message, Usage, prompt_hash

logger = logging.getLogger("tunepilot.llm")

_FORMAT = 1


class CachedBackend(BackendWrapper):
    """Answers repeated calls from a directory of saved responses.

    The key is :func:`~tunepilot.llm.prompt_hash` of the messages, the schema, the
    inner backend's name, ``temperature``, ``seed`` and ``max_tokens``: change any of
    them and the call goes to the model. Each answer is one JSON file
    (``<key>.json``), written to a temporary file and renamed into place, so several
    processes can share a directory. A hit returns the saved text, usage and model
    with ``cached=True`` and ``latency_s=0.0``; the usage is what the original call
    spent, so replays report the same tokens and cost (check ``cached`` before
    adding them to a bill). A file that cannot be read or parsed counts as a miss
    and is overwritten. Errors are not cached.

    Args:
        inner: The backend that answers misses.
        directory: Where the cache files live; created if missing.

    Attributes:
        hits: Calls answered from the cache.
        misses: Calls passed to ``inner``.

    Raises:
        LLMConfigError: ``directory`` cannot be created.

    Example:
        .. code-block:: python

            from tunepilot.llm import CachedBackend, LiteLLMBackend

            backend = CachedBackend(LiteLLMBackend("openai/gpt-4.1-mini"), ".tunepilot/cache")
            first = backend.complete(messages, schema=schema, seed=0)
            again = backend.complete(messages, schema=schema, seed=0)
            assert again.cached and again.text == first.text
    """

    def __init__(self, inner: Backend, directory: str | os.PathLike[str]) -> None:
        super().__init__(inner)
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LLMConfigError(
                f"cannot create the response cache directory {str(self.directory)!r}: {exc}"
            ) from exc
        self.hits = 0
        self.misses = 0
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
        """Return the saved answer for this exact call, or ask ``inner`` and save its answer."""
        key = prompt_hash(
            messages,
            schema,
            model=self.inner.name,
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens,
        )
        path = self.directory / f"{key}.json"
        cached = self._load(path)
        if cached is not None:
            with self._lock:
                self.hits += 1
            return cached
        with self._lock:
            self.misses += 1
        completion = self.inner.complete(
            messages, schema=schema, temperature=temperature, seed=seed, max_tokens=max_tokens
        )
        self._store(path, completion)
        return completion

    def _load(self, path: Path) -> Completion | None:
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            logger.warning("ignoring unreadable response cache file %s: %s", path, exc)
            return None
        try:
            entry = json.loads(raw)
            usage = entry["usage"]
            completion = Completion(
                text=_typed(entry["text"], str),
                usage=Usage(
                    prompt_tokens=_typed(usage["prompt_tokens"], int),
                    completion_tokens=_typed(usage["completion_tokens"], int),
                    cost_usd=float(_typed(usage["cost_usd"], (int, float))),
                ),
                model=_typed(entry["model"], str),
                latency_s=0.0,
                cached=True,
            )
            if entry["format"] != _FORMAT:
                raise ValueError(f"format {entry['format']!r}, expected {_FORMAT}")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            logger.warning("ignoring corrupt response cache file %s: %s", path, exc)
            return None
        return completion

    def _store(self, path: Path, completion: Completion) -> None:
        entry = {
            "format": _FORMAT,
            "model": completion.model,
            "text": completion.text,
            "usage": {
                "prompt_tokens": completion.usage.prompt_tokens,
                "completion_tokens": completion.usage.completion_tokens,
                "cost_usd": completion.usage.cost_usd,
            },
        }
        tmp_name: str | None = None
        try:
            # A reader in another process sees either no file or a whole one: the
            # rename is atomic, a partial write to the final name would not be.
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as tmp:
                json.dump(entry, tmp, ensure_ascii=False)
            os.replace(tmp_name, path)
        except OSError as exc:
            # The answer is already paid for; losing the cache entry must not lose it.
            logger.warning("could not write response cache file %s: %s", path, exc)
            if tmp_name is not None:
                try:
                    os.unlink(tmp_name)
                except OSError:
                    pass


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    # bool is an int subclass; a cache file saying `true` for a token count is corrupt.
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"expected {kind}, got {type(value).__name__}")
    return value
