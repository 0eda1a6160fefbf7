"""Reports, study listings, and optuna-dashboard on the storage the runner writes."""

from __future__ import annotations

import io
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
import yaml
from plotly.offline import get_plotlyjs

from tunepilot.exceptions import TunepilotError
from tunepilot.runner import list_studies, load_studies, run_studies, write_report

SPEC = """\
objective: loop:objective
direction: maximize
n_trials: 12
seed: 0
sampler: random
storage: sqlite:///{db}
parameters:
  x: interval(-1, 1)
  kind: choice(a, b)
studies:
  - name: pruned
    pruner: {{name: median, n_startup_trials: 3}}
  - name: plain
  - name: two
    directions: [maximize, minimize]
    objective: loop:two
"""

LOOP = """\
from tunepilot.runner import get_reporter

def objective(config):
    reporter = get_reporter()
    for epoch in range(5):
        value = (epoch + 1) * (1 - abs(config["x"])) + (config["kind"] == "a")
        reporter.report(epoch, value)
        if reporter.should_prune():
            reporter.prune()
    return value

def two(config):
    return 1 - abs(config["x"]), float(config["kind"] == "a")
"""


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("report")
    (root / "loop.py").write_text(LOOP)
    spec = root / "spec.yaml"
    spec.write_text(SPEC.format(db=root / "runs.db"))
    run_studies(load_studies(spec), progress=False)
    return f"sqlite:///{root / 'runs.db'}"


def test_report_writes_the_charts_and_the_best_trial(storage: str, tmp_path: Path) -> None:
    report = write_report(storage=storage, study_name="pruned", out_dir=tmp_path / "out")
    assert report.plots == ["Optimization history", "Parallel coordinates",
                            "Parameter importance", "Slice", "Intermediate values"]
    assert report.skipped == {}
    page = report.html.read_text()
    assert get_plotlyjs()[:2000] in page  # embedded: nothing to fetch
    assert page.count('class="plotly-graph-div"') == 5
    best = yaml.safe_load(report.best.read_text())
    study = optuna.load_study(study_name="pruned", storage=storage)
    assert best["study"] == "pruned" and best["directions"] == ["maximize"]
    assert best["best"]["value"] == study.best_value
    assert best["best"]["params"] == study.best_params
    assert best["best"]["overrides"] == [f"{k}={v}" for k, v in study.best_params.items()]


def test_a_study_without_intermediate_values_says_why_a_chart_is_missing(
    storage: str, tmp_path: Path
) -> None:
    report = write_report(storage=storage, study_name="two", out_dir=tmp_path)
    assert report.plots[0] == "Pareto front"
    assert "Intermediate values" in report.skipped
    best = yaml.safe_load(report.best.read_text())
    assert best["pareto_front"] and all(len(t["values"]) == 2 for t in best["pareto_front"])


def test_an_unknown_study_or_storage_is_named(storage: str, tmp_path: Path) -> None:
    with pytest.raises(TunepilotError, match="no study named 'nope'; it holds pruned, plain, two"):
        write_report(storage=storage, study_name="nope", out_dir=tmp_path)
    with pytest.raises(TunepilotError, match="no such database file"):
        write_report(storage=str(tmp_path / "missing.db"), study_name="x", out_dir=tmp_path)
    assert not (tmp_path / "missing.db").exists()


def test_list_studies_counts_trials_and_best_values(storage: str) -> None:
    studies = {s["name"]: s for s in list_studies(storage)}
    assert list(studies) == ["pruned", "plain", "two"]
    plain = optuna.load_study(study_name="plain", storage=storage)
    assert studies["plain"]["n_trials"] == 12 and studies["plain"]["states"] == {"COMPLETE": 12}
    assert studies["plain"]["best_value"] == plain.best_value
    assert studies["plain"]["steps"] == 60
    assert studies["pruned"]["states"].get("PRUNED", 0) > 0
    assert studies["pruned"]["steps"] < 60
    assert studies["two"]["best_value"] is None and studies["two"]["pareto_size"] >= 1
    json.dumps(list(studies.values()))  # JSON-ready
    path = storage.removeprefix("sqlite:///")
    assert [s["name"] for s in list_studies(path)] == ["pruned", "plain", "two"]


def _get(app: Any, path: str) -> tuple[str, Any]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET",
                               "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, *a: status.append(s)))
    return status[0], json.loads(body)


def test_optuna_dashboard_opens_the_runner_storage(storage: str) -> None:
    from optuna_dashboard import wsgi

    app = wsgi(storage)
    status, listing = _get(app, "/api/studies")
    assert status.startswith("200")
    by_name = {s["study_name"]: s for s in listing["study_summaries"]}
    assert set(by_name) == {"pruned", "plain", "two"}
    status, detail = _get(app, f"/api/studies/{by_name['pruned']['study_id']}")
    assert status.startswith("200")
    states = {t["state"] for t in detail["trials"]}
    assert {"Complete", "Pruned"} <= states
    assert any(t["intermediate_values"] for t in detail["trials"])


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian's chromium (.ci/run "
                    "installs it)")
def test_the_report_renders_offline_in_chromium(storage: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    report = write_report(storage=storage, study_name="pruned", out_dir=tmp_path)
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ])
        try:
            page = browser.new_page()
            # No network: anything but the file itself is refused, and remembered.
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith("file://")
                       else (requests.append(route.request.url), route.abort())[-1])
            page.goto(report.html.as_uri())
            page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5",
                timeout=30_000)
            rendered = page.evaluate(textwrap.dedent("""\
                () => Array.from(document.querySelectorAll('.js-plotly-plot')).map(div => ({
                    traces: (div._fullData || []).length,
                    width: div.getBoundingClientRect().width,
                    svg: div.querySelectorAll('.main-svg').length,
                }))
            """))
        finally:
            browser.close()
    assert requests == []
    drawn = [r for r in rendered if r["traces"] > 0 and r["width"] > 100 and r["svg"] > 0]
    assert len(drawn) >= 4, rendered
