"""``tunepilot report`` and ``tunepilot studies`` on a storage the runner wrote."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tunepilot.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-report")
    (root / "train.py").write_text("def objective(config):\n    return (config['x'] - 1) ** 2\n")
    (root / "spec.yaml").write_text(textwrap.dedent(f"""\
        objective: train:objective
        direction: minimize
        n_trials: 6
        seed: 0
        storage: sqlite:///{root / 'runs.db'}
        parameters:
          x: interval(-3, 3)
        studies:
          - name: first
          - name: second
            n_trials: 3
    """))
    assert runner.invoke(app, ["run", str(root / "spec.yaml")]).exit_code == 0
    return root / "runs.db"


def test_studies_lists_counts_and_best_values(storage: Path) -> None:
    result = runner.invoke(app, ["studies", str(storage), "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [(s["name"], s["n_trials"]) for s in listed] == [("first", 6), ("second", 3)]
    table = runner.invoke(app, ["studies", f"sqlite:///{storage}"]).stdout
    assert "first" in table and "second" in table and f"{listed[0]['best_value']:.6g}" in table


def test_report_writes_html_and_best_yaml(storage: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(storage), "--study", "first",
                                 "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'r' / 'report.html'} (4 charts)" in result.stdout
    assert "Intermediate values not shown: no trial reported intermediate values" in result.stderr
    best = yaml.safe_load((tmp_path / "r" / "best.yaml").read_text())
    assert best["study"] == "first" and set(best["best"]["params"]) == {"x"}


@pytest.mark.parametrize(("args", "fragment"), [
    (["studies", "missing.db"], "missing.db: no such database file"),
    (["report", "missing.db", "--study", "x"], "missing.db: no such database file"),
])
def test_a_missing_storage_is_one_line(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"error: {fragment}; give the path of the "
                                                  "SQLite file or a URL such as "
                                                  "sqlite:///tunepilot.db"]


def test_report_on_an_unknown_study(storage: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(storage), "--study", "third", "--out",
                                 str(tmp_path)])
    assert result.exit_code == 2
    assert "no study named 'third'; it holds first, second" in result.stderr
