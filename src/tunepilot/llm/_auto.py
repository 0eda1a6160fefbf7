"""``model="auto"``: the first model this machine can reach, found in about a second.

In order: an OpenAI-compatible server named by ``TUNEPILOT_LLM_BASE`` (llama.cpp
server, vLLM, LM Studio, ...), then Ollama (``OLLAMA_HOST``, by default
127.0.0.1:11434), then a hosted model whose API key is in the environment, then the
embedded model. A server counts only if it answers its model list within
:data:`PROBE_TIMEOUT_S`; a refused connection costs nothing. Keys are looked at,
never shown: the choice names the variable, not its value.
"""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Seconds a server may take to connect and to list its models.
PROBE_TIMEOUT_S = 1.0

#: Hosted models by the environment variable that holds their key, in order of use:
#: each provider's small, current model that follows a JSON schema.
HOSTED_MODELS: tuple[tuple[str, str], ...] = (
    ("OPENAI_API_KEY", "openai/gpt-4.1-mini"),
    ("ANTHROPIC_API_KEY", "anthropic/claude-haiku-4-5"),
    ("GEMINI_API_KEY", "gemini/gemini-2.5-flash"),
)

#: Past this size on disk an installed Ollama model is passed over while a smaller
#: one exists: about a 14B model at 4 bits, which fits a 16 GB GPU.
OLLAMA_MAX_BYTES = 10 * 10**9

_OLLAMA_PORT = 11434
# Local servers mostly check no key, but the OpenAI client insists on one; sending
# this keeps a real OPENAI_API_KEY from going to a server that did not ask for it.
_NO_KEY = "none"
_MAX_BODY = 4 * 2**20
_REFUSED = "refused the connection"


@dataclass(frozen=True)
class AutoChoice:
    """What ``"auto"`` resolved to.

    Attributes:
        model: ``"local"`` or a LiteLLM model string.
        api_base: the server's OpenAI-style base URL, for a local server.
        api_key: the key to send to that server (never shown).
        summary: what was chosen and why, in one line.
        why: why nothing earlier in the order was chosen.
    """

    model: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    summary: str = ""
    why: str = ""


def choose_model(
    *,
    api_base: str | None = None,
    environ: Mapping[str, str] | None = None,
    timeout: float = PROBE_TIMEOUT_S,
) -> AutoChoice:
    """Pick the model ``"auto"`` stands for on this machine now.

    Args:
        api_base: a server to try first, in place of ``TUNEPILOT_LLM_BASE``.
        environ: the environment to read; ``os.environ`` by default.
        timeout: seconds each probe may take.

    Returns:
        The choice; ``model`` is ``"local"`` when nothing better was found.
    """
    env = os.environ if environ is None else environ
    passed_over: list[str] = []

    named = (api_base or env.get("TUNEPILOT_LLM_BASE", "")).strip()
    if named:
        source = "api_base" if api_base else "TUNEPILOT_LLM_BASE"
        key = env.get("TUNEPILOT_LLM_API_KEY", "").strip() or None
        found, reason = _openai_server(named, key=key, timeout=timeout)
        if found is not None:
            base, model = found
            return AutoChoice(
                f"openai/{model}", base, key or _NO_KEY,
                f"server at {_shown(base)} ({source}), {model}",
            )
        passed_over.append(f"{source} {_shown(named)} {reason}")

    ollama = _ollama_url(env.get("OLLAMA_HOST", "").strip())
    answered, installed, reason = _ollama_model(ollama, timeout=timeout)
    if installed is not None:
        note = f" ({'; '.join(passed_over)})" if passed_over else ""
        return AutoChoice(
            f"openai/{installed}", f"{ollama}/v1", _NO_KEY,
            f"Ollama at {_shown(ollama)}, {installed}{note}",
        )
    if answered or reason != _REFUSED:  # no Ollama is no news; a broken one is
        passed_over.append(f"Ollama at {_shown(ollama)} {reason}")

    why = "; ".join(passed_over) or "no local server"
    for variable, hosted in HOSTED_MODELS:
        if env.get(variable, "").strip():
            return AutoChoice(hosted, summary=f"{why}, {variable} set: {hosted}", why=why)
    why = f"{why}; no API key found" if passed_over else "no local server or API key found"
    return AutoChoice("local", summary=f"embedded SmolLM2-135M ({why})", why=why)


def pick_ollama_model(
    installed: Sequence[Mapping[str, Any]], loaded: Sequence[Mapping[str, Any]] = ()
) -> str | None:
    """The Ollama model to use, from ``/api/tags`` (installed) and ``/api/ps`` (loaded).

    A chat model already in memory is used as it is (it fits and answers at once);
    otherwise the largest installed one up to :data:`OLLAMA_MAX_BYTES`, or the smallest
    if all are larger. Embedding models and cloud models are never chosen.
    """
    usable = [m for m in installed if _is_local_chat_model(m)]
    names = {str(m["name"]) for m in usable}
    for model in loaded:
        name = model.get("name") or model.get("model")
        if isinstance(name, str) and name in names:
            return name
    if not usable:
        return None

    def size(model: Mapping[str, Any]) -> int:
        value = model.get("size")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    fitting = [m for m in usable if size(m) <= OLLAMA_MAX_BYTES]
    if fitting:
        best = max(fitting, key=lambda m: (size(m), str(m["name"])))
    else:
        best = min(usable, key=lambda m: (size(m), str(m["name"])))
    return str(best["name"])


def _is_local_chat_model(model: Mapping[str, Any]) -> bool:
    name = model.get("name")
    if not isinstance(name, str) or not name:
        return False
    # Cloud models are listed beside local ones but run on ollama.com.
    if model.get("remote_host") or name.endswith(("-cloud", ":cloud")):
        return False
    details = model.get("details")
    families: list[str] = []
    if isinstance(details, Mapping):
        families = [str(f) for f in details.get("families") or [] if f]
        families.append(str(details.get("family") or ""))
    return "embed" not in name.lower() and not any("bert" in f.lower() for f in families)


def _ollama_url(host: str) -> str:
    """Ollama's base URL from ``OLLAMA_HOST``, read the way Ollama reads it."""
    scheme, sep, rest = host.partition("://")
    default_port = _OLLAMA_PORT
    if not sep:
        scheme, rest = "http", host
    elif scheme in ("http", "https"):
        default_port = 80 if scheme == "http" else 443
    hostport, _, path = rest.partition("/")
    try:
        name, port = str(ipaddress.ip_address(hostport.strip("[]"))), default_port
    except ValueError:
        try:
            parsed = urllib.parse.urlsplit(f"//{hostport}")
            name, port = parsed.hostname or "", parsed.port or default_port
        except ValueError:
            name, port = "", default_port
    # A listening address (0.0.0.0, ::) is reached on the loopback interface.
    if name in ("", "0.0.0.0", "::"):
        name = "127.0.0.1"
    if ":" in name:
        name = f"[{name}]"
    path = path.strip("/")
    return f"{scheme}://{name}:{port}" + (f"/{path}" if path else "")


def _ollama_model(url: str, *, timeout: float) -> tuple[bool, str | None, str]:
    """Whether Ollama at ``url`` answered, the model to use there, and if none, why."""
    tags, reason = _get_json(f"{url}/api/tags", timeout=timeout)
    installed = tags.get("models") if isinstance(tags, dict) else None
    if not isinstance(installed, list):
        return False, None, reason or "answered, but not with Ollama's model list"
    running, _ = _get_json(f"{url}/api/ps", timeout=timeout)
    loaded = running.get("models") if isinstance(running, dict) else None
    name = pick_ollama_model(
        [m for m in installed if isinstance(m, dict)],
        [m for m in loaded if isinstance(m, dict)] if isinstance(loaded, list) else [],
    )
    if name is None:
        return True, None, "has no chat model installed (ollama pull qwen2.5:7b)"
    return True, name, ""


def _openai_server(
    base: str, *, key: str | None, timeout: float
) -> tuple[tuple[str, str] | None, str]:
    """``(base URL, first model)`` of the OpenAI-compatible server at ``base``, or why not."""
    base = base.rstrip("/")
    if not base.startswith(("http://", "https://")):
        base = f"http://{base}"
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    candidates = [base] if base.endswith("/v1") else [base, f"{base}/v1"]
    reason = ""
    for candidate in candidates:
        listing, reason = _get_json(f"{candidate}/models", timeout=timeout, headers=headers)
        if listing is None:
            if reason.startswith("answered HTTP 404"):
                continue  # a base URL without /v1: try it with
            return None, reason
        data = listing.get("data") if isinstance(listing, dict) else None
        ids = [m["id"] for m in data or [] if isinstance(m, dict) and isinstance(m.get("id"), str)]
        if not ids:
            return None, "answered, but listed no model"
        return (candidate, ids[0]), ""
    return None, reason


def _get_json(
    url: str, *, timeout: float, headers: Mapping[str, str] | None = None
) -> tuple[Any, str]:
    """The JSON at ``url``, or ``None`` and a few words on what went wrong."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})})
    host = urllib.parse.urlsplit(url).hostname or ""
    # A proxy from the environment must not carry a request meant for this machine.
    handlers = [urllib.request.ProxyHandler({})] if _is_loopback(host) else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(_MAX_BODY)
    except urllib.error.HTTPError as exc:
        exc.close()
        return None, f"answered HTTP {exc.code}"
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return None, _REFUSED
        if isinstance(exc.reason, TimeoutError):
            return None, f"did not answer within {timeout:g} s"
        return None, f"could not be reached ({exc.reason})"
    except TimeoutError:
        return None, f"did not answer within {timeout:g} s"
    except (OSError, ValueError) as exc:
        return None, f"could not be reached ({exc})"
    try:
        return json.loads(body), ""
    except ValueError:
        return None, "answered, but not with JSON"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown(url: str) -> str:
    """``url`` without credentials, and without ``http://`` where that is all it adds."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    try:
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
    except ValueError:
        pass
    shown = f"{netloc}{parts.path}".rstrip("/")
    return shown if parts.scheme == "http" else f"{parts.scheme}://{shown}"
