"""Several processes share one storage: each configuration of a batch runs exactly once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import optuna
import pytest

WORKER = r"""
import sys, optuna
from optuna.distributions import FloatDistribution, IntDistribution, CategoricalDistribution
from tunepilot import LLMSampler
from tunepilot.runner._storage import open_storage
from tunepilot.testing import FakeLLM

optuna.logging.set_verbosity(optuna.logging.ERROR)
url, seed = sys.argv[1], int(sys.argv[2])
space = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "units": IntDistribution(8, 512),
    "act": CategoricalDistribution(["relu", "gelu", "tanh"]),
}
storage = open_storage(url)
sampler = LLMSampler(
    FakeLLM("valid", seed=seed), mode="llm", safeguard=False, search_space=space, batch_size=4,
    seed=seed,
)
study = optuna.load_study(study_name="shared", storage=storage, sampler=sampler)

def objective(trial):
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    units = trial.suggest_int("units", 8, 512)
    act = trial.suggest_categorical("act", ["relu", "gelu", "tanh"])
    return lr * units + len(act)

study.optimize(objective, n_trials=12)
"""


@pytest.mark.slow
def test_four_processes_with_batches_of_four_never_run_a_configuration_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="shared", storage=url)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [
        subprocess.Popen([sys.executable, str(script), url, str(seed)]) for seed in range(4)
    ]
    assert [w.wait(timeout=300) for w in workers] == [0, 0, 0, 0]

    study = optuna.load_study(study_name="shared", storage=url)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) >= 48
    assert all(t.user_attrs["llm.source"] == "llm" for t in finished)
    # A batch is identified by the trial whose call proposed it.
    batches = Counter(t.user_attrs["llm.call_trial"] for t in finished)
    assert max(batches.values()) <= 4
    assert sum(1 for n in batches.values() if n > 1) >= 4, "batches were not shared out"
    configs = Counter(tuple(sorted(t.params.items())) for t in finished)
    assert configs.most_common(1)[0][1] == 1
