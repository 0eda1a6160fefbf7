"""The blend over Optuna's GP: πBO inside the GP's acquisition optimizer."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution

from tunepilot import LLMSampler
from tunepilot.testing import ControlledPrior

pytest.importorskip("torch")

D = 4
SPACE = {f"x{i}": FloatDistribution(-5.0, 5.0) for i in range(D)}
OPTIMUM = {f"x{i}": 1.5 - i for i in range(D)}
WORST = {f"x{i}": -4.5 if OPTIMUM[f"x{i}"] > 0 else 4.5 for i in range(D)}


def sphere(trial: optuna.Trial) -> float:
    return sum((trial.suggest_float(n, -5.0, 5.0) - OPTIMUM[n]) ** 2 for n in SPACE)


@pytest.fixture(autouse=True)
def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def gp_blend(centre: dict[str, float], seed: int, **kwargs: object) -> LLMSampler:
    return LLMSampler(ControlledPrior(centre, 0.05, seed=seed), search_space=SPACE, seed=seed,
                      base="gp", **kwargs)


def best_after(sampler: optuna.samplers.BaseSampler, n: int) -> float:
    study = optuna.create_study(sampler=sampler)
    study.optimize(sphere, n_trials=n)
    return study.best_value


@pytest.mark.slow
def test_informative_advice_beats_the_plain_gp_early():
    seeds = range(3)
    ours = [best_after(gp_blend(OPTIMUM, s), 12) for s in seeds]
    gp = [best_after(optuna.samplers.GPSampler(seed=s), 12) for s in seeds]
    assert np.mean(ours) < 0.5 * np.mean(gp), (ours, gp)


@pytest.mark.slow
def test_misleading_advice_loses_its_weight_and_the_gp_goes_on():
    for seed in range(2):
        study = optuna.create_study(sampler=gp_blend(WORST, seed))
        study.optimize(sphere, n_trials=20)
        attrs = [t.user_attrs for t in study.trials]
        assert attrs[-1]["llm.beta"] == 0.0
        assert {a["llm.blend_part"] for a in attrs[12:]} == {"gp"}
        # The advice cost its trial on trust; the GP's own search is intact.
        assert study.best_value < 10.0, study.best_value


def test_threads_sharing_the_gp_blend_never_run_a_configuration_twice():
    sampler = gp_blend(OPTIMUM, 0, n_startup_trials=4)
    study = optuna.create_study(sampler=sampler)
    study.optimize(sphere, n_trials=16, n_jobs=4)
    configs = Counter(tuple(sorted(t.params.items())) for t in study.trials)
    assert len(study.trials) == 16 and configs.most_common(1)[0][1] == 1


WORKER = r"""
import sys, optuna
from optuna.distributions import FloatDistribution
from tunepilot import LLMSampler
from tunepilot.testing import ControlledPrior

optuna.logging.set_verbosity(optuna.logging.ERROR)
url, seed = sys.argv[1], int(sys.argv[2])
space = {f"x{i}": FloatDistribution(-5.0, 5.0) for i in range(3)}
sampler = LLMSampler(ControlledPrior({n: 1.0 for n in space}, 0.05, seed=seed),
                     search_space=space, seed=seed, base="gp", n_startup_trials=4)
study = optuna.load_study(study_name="shared", storage=url, sampler=sampler)
study.optimize(lambda t: sum((t.suggest_float(n, -5.0, 5.0) - 1.0) ** 2 for n in space),
               n_trials=8)
"""


@pytest.mark.slow
def test_four_processes_on_the_gp_blend_never_run_a_configuration_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="shared", storage=url)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [subprocess.Popen([sys.executable, str(script), url, str(s)]) for s in range(4)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0, 0, 0]
    study = optuna.load_study(study_name="shared", storage=url)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 32
    assert {t.user_attrs["llm.base"] for t in finished} == {"gp"}
    assert any(t.user_attrs["llm.blend_part"] in ("gp", "prior") for t in finished[8:])
    configs = Counter(tuple(sorted(t.params.items())) for t in finished)
    assert configs.most_common(1)[0][1] == 1
