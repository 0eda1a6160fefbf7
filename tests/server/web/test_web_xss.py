"""User and LLM text is shown as text: no script runs, whatever a name, rationale or metric holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest

from tunepilot.testing import FakeOpenAIServer, SweepServer

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
LINK = '<a href="javascript:alert(1)">click me</a>'
EVIL = f"{SCRIPT} {IMG} {LINK} javascript:alert(1)"

#: What would show that markup became markup rather than text.
INSPECT = """() => ({
    inline: Array.from(document.scripts).filter(s => !s.src).length,
    handlers: document.querySelectorAll('[onerror], [onload], [onmouseover], [onclick]').length,
    jsLinks: Array.from(document.querySelectorAll('a')).filter(
        a => a.href.trim().toLowerCase().startsWith('javascript:')).length,
    injectedImages: document.querySelectorAll('img').length,
    text: document.body.innerText,
})"""


def answer(body: dict[str, Any]) -> str:
    return json.dumps({"configurations": [{"lr": 0.02, "opt": SCRIPT}], "rationale": EVIL})


@pytest.mark.slow
def test_payloads_render_as_text_and_nothing_runs(
    shots: Any, offline_page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    db = f"sqlite:///{tmp_path}/sweeps.db"
    with FakeOpenAIServer(responder=answer) as llm, SweepServer(
            db, llm_model="openai/test-model", llm_api_base=llm.base_url, llm_timeout=5) as server:
        api = httpx.Client(base_url=f"{server.url}/api/v1", timeout=30)
        request.addfinalizer(api.close)
        config = {
            "method": "llm", "metric": {"name": "loss"},
            "parameters": {"lr": {"min": 0.001, "max": 0.1},
                           "opt": {"values": [SCRIPT, "javascript:alert(1)"]}},
            "sampler": {"seed": 0, "description": EVIL},
        }
        created = api.post("/sweeps", json={"config": config, "project": IMG, "name": IMG,
                                            "description": EVIL})
        assert created.status_code == 201, created.text
        sweep_id = created.json()["id"]
        run_ids = []
        for i in range(3):
            lease = api.post(f"/sweeps/{sweep_id}/suggest", json={"agent": IMG}).json()
            run_ids.append(lease["run_id"])
            api.post(f"/runs/{lease['run_id']}/log",
                     json={"rows": [{"metrics": {"loss": 1.0 + i, IMG: 2.0}}]})
            state = "failed" if i == 2 else "finished"
            api.post(f"/runs/{lease['run_id']}/finish",
                     json={"state": state, "reason": EVIL, "summary": {"loss": 0.5 + i,
                                                                      "note": EVIL}})
        assert "<script>" in str(api.get(f"/runs/{run_ids[0]}").json()["config"]["opt"])

        study = optuna.create_study(study_name=f"study {SCRIPT}", storage=db)
        study.set_user_attr("description", EVIL)
        for i in range(4):
            trial = study.ask()
            trial.suggest_categorical("choice", [SCRIPT, IMG])
            trial.set_user_attr("llm.source", "llm")
            trial.set_user_attr("llm.rationale", EVIL)
            trial.set_user_attr("llm.repairs", [IMG])
            trial.report(float(i), step=0)
            study.tell(trial, float(i))
        study_id = study._study_id

        context, page, foreign = offline_page(server.url)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        seen: dict[str, dict[str, Any]] = {}
        try:
            sweep = f"{server.url}/ui/sweeps/{sweep_id}"
            studies = f"{server.url}/ui/studies/{study_id}"
            tabs = ["overview", "runs", "best", "importance", "parallel", "history", "llm"]
            urls = [f"{server.url}/ui/sweeps", f"{server.url}/ui/sweeps?q=%3Cscript%3E"]
            urls += [f"{sweep}?tab={t}" for t in tabs]
            urls += [f"{server.url}/ui/runs/{r}" for r in run_ids]
            urls += [f"{server.url}/ui/studies"] + [f"{studies}?tab={t}" for t in tabs]
            urls += [f"{studies}/trials/0", f"{server.url}/ui/sweeps/%3Cscript%3Ealert(1)"]
            shown = {f"{sweep}?tab=overview": "sweep-overview", f"{sweep}?tab=llm": "sweep-llm",
                     f"{server.url}/ui/runs/{run_ids[0]}": "run",
                     f"{server.url}/ui/sweeps": "sweeps-list",
                     f"{studies}?tab=overview": "study-overview", f"{studies}?tab=llm": "study-llm",
                     f"{studies}/trials/0": "trial"}
            for url in urls:
                response = page.goto(url)
                assert response is not None
                assert "script-src 'self'" in response.headers["content-security-policy"], url
                if page.locator("[data-chart]").count():
                    # Drawn, or a note saying why not (too few runs for importance).
                    page.wait_for_selector(
                        "[data-chart][data-drawn=true], [data-chart-note]:not(:empty)",
                        timeout=30_000)
                seen[url] = page.evaluate(INSPECT)
                if url in shown:
                    shots(page, shown[url])
            page.goto(f"{server.url}/ui/sweeps/new")
            page.fill("textarea[name=config]", f"method: random\nparameters:\n  {SCRIPT}: [")
            page.click("button[type=submit].primary")
            seen["new"] = page.evaluate(INSPECT)
            shots(page, "yaml-error")
        finally:
            context.close()
        assert foreign == []
        assert dialogs == []
        for url, found in seen.items():
            assert (found["inline"], found["handlers"], found["jsLinks"],
                    found["injectedImages"]) == (0, 0, 0, 0), url
        # The payloads are there, as text.
        assert SCRIPT in seen[f"{sweep}?tab=overview"]["text"]
        assert LINK in seen[f"{sweep}?tab=overview"]["text"]
        assert EVIL in seen[f"{sweep}?tab=llm"]["text"]
        assert SCRIPT in seen[f"{server.url}/ui/runs/{run_ids[0]}"]["text"]
        assert EVIL in seen[f"{studies}?tab=llm"]["text"]
        assert SCRIPT in seen["new"]["text"]
