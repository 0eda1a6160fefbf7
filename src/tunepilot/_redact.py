"""One redaction for every text that leaves the process: logs, stored attributes, prompts.

Text that tunepilot did not write itself (a command's stderr, an exception's message,
a provider's error, a URL from a config or the environment) may carry a secret. Before
such text is logged, stored in a trial's attributes or sent to a model provider,
:func:`redact` replaces with ``***``:

* the password of a URL's userinfo (``postgresql://train:***@db/x``), or the whole
  userinfo when it has no password (``https://***@github.com``: it is then a token);
* the value after a secret-looking name: ``password=...``, ``"api_key": "..."``,
  ``--token ...``, ``Authorization: Bearer ...``;
* strings shaped like well-known credentials (OpenAI, Anthropic, GitHub, Hugging Face,
  Slack, AWS and Google keys, JSON web tokens, tunepilot's own tokens);
* the value of every environment variable whose name looks secret (``*_KEY``,
  ``*_TOKEN``, ``*_SECRET``, ``*PASSWORD*``, ...), wherever it appears.

Redaction is a safety net for text that should not have held a secret in the first
place; it errs towards hiding too much.

Example:
    .. code-block:: python

        from tunepilot._redact import redact

        assert redact("cannot reach postgresql://train:hunter22@db:5432/runs") == (
            "cannot reach postgresql://train:***@db:5432/runs")
        assert redact("error: api_key=sk-live-1234") == "error: api_key=***"
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

__all__ = ["MASK", "redact", "secret_name"]

#: What a secret is replaced with.
MASK = "***"
#: Values of secret-named environment variables shorter than this are left alone, and
#: so are numbers shorter than a phone number: ``AUTH_ENABLED=true`` or
#: ``MAX_TOKENS=100000`` would otherwise mask every "true" or "100000".
_MIN_ENV_SECRET = 6
_MIN_ENV_NUMBER = 12

#: Words that make a name secret wherever they stand in it (``PGPASSWORD``, ``MYSECRET``).
_SECRET_ANYWHERE = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET")
#: Words that make a name secret as one of its parts (``HF_TOKEN``, ``auth-token``, ``apiKey``).
_SECRET_PARTS = frozenset({
    "TOKEN", "TOKENS", "APIKEY", "APIKEYS", "CREDENTIAL", "CREDENTIALS", "AUTH",
    "AUTHORIZATION", "COOKIE", "DSN", "PWD", "PASS",
})
#: Parts that make a name secret as its last part (``OPENAI_API_KEY``, but not ``KEY_ID``).
_SECRET_LAST = frozenset({"KEY", "KEYS"})
#: Names that are one of those parts alone and hold no secret.
_NOT_SECRET = frozenset({"PWD", "PASS"})  # the working directory; a pass count

# scheme://userinfo@ : the userinfo may hold ':' (user:password) and, unencoded, '@'.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s?#]*)@")
_SCHEMES = ("bearer", "basic", "token", "digest")
# An HTTP credential: "Authorization: Bearer abc", "bearer abc", "Basic dXNlcjpw".
_HEADER = re.compile(
    r"""(?i)(?P<head>\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?)"""
    r"""(?:(?P<scheme>bearer|basic|token|digest)\s+)?(?P<value>[^\s"',;]+)"""
)
_BEARER = re.compile(r"(?i)\b(?P<scheme>bearer|basic)(?P<sep>\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})")
# A name, then (looked at, not consumed: the value may hold the next name) a separator
# (=, :, JSON's ": ", or the space after a --flag) and the value, quoted or bare.
_NAMED = re.compile(
    r"""(?<![\w.-])(?P<name>(?:--?)?[A-Za-z_][\w.-]*)"""
    r"""(?=(?P<close>["']?)(?P<sep>\s*[=:]\s*|\s+)"""
    r"""(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s"',;&)}\]>]+))"""
)
_SHAPES = re.compile(
    r"""\b(?:
        sk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{16,}   # OpenAI, Anthropic
      | gh[pousr]_[A-Za-z0-9]{30,}                        # GitHub
      | github_pat_[A-Za-z0-9_]{30,}
      | hf_[A-Za-z0-9]{30,}                               # Hugging Face
      | xox[abprs]-[A-Za-z0-9-]{10,}                      # Slack
      | (?:AKIA|ASIA)[0-9A-Z]{16}                         # AWS access key id
      | AIza[0-9A-Za-z_-]{35}                             # Google
      | tp_[A-Za-z0-9_-]{32,}                             # tunepilot's own tokens
      | eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}  # JSON web tokens
    )""",
    re.VERBOSE,
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^A-Z0-9]+")


def secret_name(name: str) -> bool:
    """Whether a variable, option or field called ``name`` probably holds a secret.

    ``OPENAI_API_KEY``, ``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``DB_PASSWORD``,
    ``PGPASSWORD``, ``apiKey`` and ``--auth-token`` do; ``TOKENIZERS_PARALLELISM``,
    ``AWS_ACCESS_KEY_ID``, ``PWD`` and ``monkey`` do not.
    """
    upper = _CAMEL.sub("_", name.strip("-\"'")).upper()
    if any(word in upper for word in _SECRET_ANYWHERE):
        return True
    parts = [p for p in _SPLIT.split(upper) if p]
    if not parts or parts == [parts[0]] and parts[0] in _NOT_SECRET:
        return False
    return parts[-1] in _SECRET_LAST or any(part in _SECRET_PARTS for part in parts)


def redact(text: str, *, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with URL passwords, secret-named values and credential-shaped strings
    replaced by ``***``.

    Args:
        text: any text.
        environ: the environment whose secret-named variables' values are masked
            wherever they appear; ``os.environ`` by default.

    Returns:
        The text, unchanged where nothing looked secret.
    """
    if not text:
        return text
    env = os.environ if environ is None else environ
    for name, value in list(env.items()):
        value = value.strip()
        if value in text and _env_secret(name, value):
            text = text.replace(value, MASK)
    text = _URL_USERINFO.sub(_userinfo, text)
    text = _HEADER.sub(_header, text)
    text = _BEARER.sub(lambda m: f"{m['scheme']}{m['sep']}{MASK}", text)
    text = _named(text)
    return _SHAPES.sub(MASK, text)


def _env_secret(name: str, value: str) -> bool:
    if len(value) < (_MIN_ENV_NUMBER if value.isdigit() else _MIN_ENV_SECRET):
        return False
    return secret_name(name)


def _userinfo(match: re.Match[str]) -> str:
    userinfo = match["userinfo"]
    if not userinfo:
        return match.group(0)
    user, colon, _ = userinfo.partition(":")
    shown = f"{user}:{MASK}" if colon else MASK
    return f"{match['scheme']}{shown}@"


def _header(match: re.Match[str]) -> str:
    scheme = f"{match['scheme']} " if match["scheme"] else ""
    return f"{match['head']}{scheme}{MASK}"


def _named(text: str) -> str:
    out: list[str] = []
    done = 0
    for match in _NAMED.finditer(text):
        if match.start() < done:
            continue  # inside a value already masked
        name, sep, value = match["name"], match["sep"], match["value"]
        flag = name.startswith("-")
        if not sep.strip() and (not flag or value.startswith("-")):
            continue  # "token expired": only a --flag takes its value after a space
        bare = value.strip("\"'")
        if bare in ("", MASK) or bare.lower() in _SCHEMES or not secret_name(name):
            continue
        masked = f"{value[0]}{MASK}{value[0]}" if value[0] in "\"'" else MASK
        out += [text[done:match.start("value")], masked]
        done = match.end("value")
    return "".join(out) + text[done:]
