"""The quickstart, end to end: ``tunepilot run examples/quickstart.yaml`` on the embedded model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tunepilot.runner import load_spec

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"


@pytest.mark.slow
@pytest.mark.local_llm
def test_quickstart_improves_on_its_first_trial_with_the_embedded_model(tmp_path: Path) -> None:
    spec = load_spec(QUICKSTART)
    storage = f"sqlite:///{tmp_path / 'q.db'}"
    # No hosted model may be reached: the run must work on the embedded one alone.
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_API_BASE"))}
    done = subprocess.run(
        [sys.executable, "-c", "from tunepilot.cli import main; main()",
         "run", str(QUICKSTART), "--json", "--storage", storage],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=570, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)

    study = optuna.load_study(study_name=spec.name, storage=storage)
    trials = study.trials
    assert len(trials) == spec.n_trials == 20
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.state for t in trials]
    # Blend mode: the model's proposals are a prior that weighs the base's acquisition.
    blended = [t for t in trials if t.user_attrs.get("llm.source") == "blend"]
    assert len(blended) >= 0.8 * len(trials), summary["sources"]
    assert any(t.user_attrs.get("llm.blend_part") == "prior" for t in blended)
    assert summary["llm_stats"]["proposals"] > 0
    # The blend's base is recorded per trial and counted in the summary.
    assert sum(summary["bases"].values()) == len(blended) and set(summary["bases"]) <= {"gp", "tpe"}
    outside = [t.params for t in trials if not spec.parameters.contains(t.params)]
    assert outside == []
    first, best = trials[0].value, study.best_value
    assert first is not None
    assert (best > first) if spec.direction == "maximize" else (best < first)
    assert summary["best_value"] == best and summary["n_trials"] == 20
