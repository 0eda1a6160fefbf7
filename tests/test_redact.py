"""Redaction: what looks secret is masked before it is logged, stored or sent to a model."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution

from tunepilot import LLMSampler
from tunepilot._redact import MASK, redact, secret_name
from tunepilot.runner import load_spec, run_study
from tunepilot.testing import FakeLLM

PASSWORD = "Tr41n-pw-58f1"


@pytest.mark.parametrize(("text", "expected"), [
    ("cannot reach postgresql://train:hunter22@db:5432/runs",
     "cannot reach postgresql://train:***@db:5432/runs"),
    ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("git clone https://ghp_abc123@github.com/a/b", "git clone https://***@github.com/a/b"),
    ("http://u:p@ss@host/x", "http://u:***@host/x"),
    ("login password=hunter2 user=bob", "login password=*** user=bob"),
    ("error: api_key=abc123", "error: api_key=***"),
    ('{"password": "p w", "user": "x"}', '{"password": "***", "user": "x"}'),
    ("{'apiKey': 'abc'}", "{'apiKey': '***'}"),
    ("train.py --auth-token abc123 --verbose", "train.py --auth-token *** --verbose"),
    ("GET /x?token=abc&page=2", "GET /x?token=***&page=2"),
    ("Authorization: Bearer abcdefghijk", "Authorization: Bearer ***"),
    ("sent bearer abcdefghijklmn", "sent bearer ***"),
    ("AWS_SECRET_ACCESS_KEY=abcd", "AWS_SECRET_ACCESS_KEY=***"),
    ("rejected sk-proj-ABCDEFGHIJKLMNOPQRSTUV", "rejected ***"),
    ("hf_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef1234 expired", "*** expired"),
    ("tp_" + "a" * 43, MASK),
])
def test_secrets_in_text_are_masked(text: str, expected: str) -> None:
    assert redact(text, environ={}) == expected


@pytest.mark.parametrize("text", [
    "ValueError: depth too large for the data",
    "KeyError: 'x'",
    "the token expired at step 3",
    "monkey=3 turkey=4",
    "see http://127.0.0.1:8000/ui and user@example.com",
    "",
])
def test_plain_text_is_left_alone(text: str) -> None:
    assert redact(text, environ={}) == text


def test_values_of_secret_environment_variables_are_masked_anywhere() -> None:
    environ = {"DB_PASSWORD": PASSWORD, "HF_TOKEN": "hf-abcdef", "PWD": "/home/me",
               "TOKENIZERS_PARALLELISM": "false", "MAX_TOKENS": "100000"}

    text = f"psql -W {PASSWORD} in /home/me; hf-abcdef; false; 100000"
    assert redact(text, environ=environ) == "psql -W *** in /home/me; ***; false; 100000"


@pytest.mark.parametrize(("name", "secret"), [
    ("OPENAI_API_KEY", True), ("HF_TOKEN", True), ("AWS_SECRET_ACCESS_KEY", True),
    ("DB_PASSWORD", True), ("PGPASSWORD", True), ("MYSQL_PWD", True), ("apiKey", True),
    ("--auth-token", True), ("SENTRY_DSN", True),
    ("TOKENIZERS_PARALLELISM", False), ("AWS_ACCESS_KEY_ID", False), ("PWD", False),
    ("monkey", False), ("author", False), ("HOME", False),
])
def test_secret_names(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


FAILING = f"""\
import sys
print("could not connect to postgresql://train:{PASSWORD}@db:5432/runs", file=sys.stderr)
sys.exit(1)
"""


def test_a_failing_commands_stderr_reaches_neither_the_trial_nor_the_prompt(
    tmp_path: Path,
) -> None:
    # The password is in the URL only: no environment variable names it.
    (tmp_path / "train.py").write_text(textwrap.dedent(FAILING))
    storage = f"sqlite:///{tmp_path / 'cmd.db'}"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "cmd", "objective": {"command": f"{sys.executable} train.py"},
        "direction": "minimize", "n_trials": 2, "seed": 0, "sampler": "random",
        "storage": storage, "parameters": {"x": "interval(-2, 2)"},
    }))
    run_study(load_spec(spec), progress=False)
    failed = optuna.load_study(study_name="cmd", storage=storage).trials
    reasons = [t.user_attrs["fail_reason"] for t in failed]
    assert all("postgresql://train:***@db:5432/runs" in r for r in reasons), reasons
    assert not any(PASSWORD in r for r in reasons)

    # A reason stored by anything else (an older version, a user's own code) is
    # masked in the prompt too.
    study = optuna.load_study(study_name="cmd", storage=storage)
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL, params={"x": 0.5},
        distributions={"x": FloatDistribution(-2, 2)},
        user_attrs={"fail_reason": f"psycopg: postgresql://train:{PASSWORD}@db/runs"},
    ))
    fake = FakeLLM(seed=0)
    study.sampler = LLMSampler(fake, mode="llm", search_space={"x": FloatDistribution(-2, 2)},
                               seed=0, safeguard=False)
    study.optimize(lambda t: t.suggest_float("x", -2, 2) ** 2, n_trials=1)
    prompt = "\n".join(m["content"] for messages, _ in fake.calls for m in messages)
    assert "failed:" in prompt and "train:***@db" in prompt
    assert PASSWORD not in prompt


def test_a_password_in_api_base_is_neither_stored_nor_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tunepilot.testing import FakeOpenAIServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with FakeOpenAIServer() as gone:
        api_base = gone.base_url.replace("http://", "http://tuner:pw-91c3e7@")
    space = {"x": FloatDistribution(-2, 2)}
    sampler = LLMSampler("openai/test-model", api_base=api_base, mode="llm", search_space=space,
                         timeout=2, max_retries=0, seed=0, safeguard=False)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", -2, 2) ** 2, n_trials=1)

    reason = study.trials[0].user_attrs["llm.fallback_reason"]
    assert "tuner:***@127.0.0.1" in reason
    assert "pw-91c3e7" not in reason
    assert "pw-91c3e7" not in caplog.text
