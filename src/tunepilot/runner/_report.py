"""A study report: one self-contained HTML file of Plotly charts, and the best trial as YAML.

``report.html`` embeds Plotly's JavaScript, so it opens offline and can be mailed or
archived as one file. ``best.yaml`` holds the best configuration, also as Hydra
overrides ready to paste on a command line.
"""

from __future__ import annotations

import html
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from tunepilot.exceptions import TunepilotError
from tunepilot.runner._command import command_line
from tunepilot.runner._studies import load_study


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote.

    Attributes:
        html: the path of ``report.html``.
        best: the path of ``best.yaml``.
        plots: the titles of the charts in the report, in order.
        skipped: for each chart left out, why (``{"importance": "needs 2 completed trials"}``).
    """

    html: Path
    best: Path
    plots: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def write_report(*, storage: str, study_name: str, out_dir: str | Path) -> Report:
    """Write ``report.html`` and ``best.yaml`` for one study into ``out_dir``.

    The charts: optimization history, parallel coordinates, parameter importance
    (fANOVA), slice plot and intermediate values (only when trials reported any); a
    study with several directions also gets its Pareto front. A chart the study
    cannot support yet (importance before two trials completed) is replaced by a note.

    Args:
        storage: the storage URL, or the path of an SQLite file.
        study_name: the study to report on.
        out_dir: the folder to write into; created if missing.

    Raises:
        TunepilotError: plotly is not installed, or the storage or study does not exist.

    Example:
        .. code-block:: python

            from tunepilot.runner import write_report

            report = write_report(storage="sqlite:///pruning.db", study_name="sgd-pruned",
                                  out_dir="report")
            print(report.html, report.plots)
    """
    if importlib.util.find_spec("plotly") is None:
        raise TunepilotError("the report needs plotly; install it with "
                             "pip install 'tunepilot[report]'")
    import plotly.offline

    study = load_study(storage, study_name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections: list[tuple[str, str]] = []
    skipped: dict[str, str] = {}
    for title, make in _charts(study):
        try:
            figure = make()
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            skipped[title] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            continue
        if figure is None:
            skipped[title] = "no trial reported intermediate values"
            continue
        figure.update_layout(title_text="", height=480)  # the section heading names it
        sections.append((title, figure.to_html(full_html=False, include_plotlyjs=False)))

    page = _page(study, sections, skipped, plotly.offline.get_plotlyjs())
    html_path = out / "report.html"
    html_path.write_text(page, encoding="utf-8")
    best_path = out / "best.yaml"
    best_path.write_text(yaml.safe_dump(_best(study), sort_keys=False), encoding="utf-8")
    return Report(html=html_path, best=best_path, plots=[t for t, _ in sections], skipped=skipped)


def _charts(study: optuna.Study) -> list[tuple[str, Callable[[], Any]]]:
    from optuna import visualization as vis
    from optuna.importance import FanovaImportanceEvaluator

    names = [d.name.lower() for d in study.directions]
    charts: list[tuple[str, Callable[[], Any]]] = []
    if len(names) > 1:
        charts.append(("Pareto front", lambda: vis.plot_pareto_front(study)))
    for index, direction in enumerate(names):
        target, label = _target(index, len(names))
        suffix = f" (objective {index}, {direction})" if len(names) > 1 else ""

        def history(t: Any = target, n: str = label) -> Any:
            return vis.plot_optimization_history(study, target=t, target_name=n)

        charts.append((f"Optimization history{suffix}", history))
    target, label = _target(0, len(names))
    charts += [
        ("Parallel coordinates", lambda: vis.plot_parallel_coordinate(
            study, target=target, target_name=label)),
        # fANOVA with a seed: the same study gives the same chart; PED-ANOVA, Optuna's
        # default, warns on maximized studies.
        ("Parameter importance", lambda: _importances(study, target, label,
                                                      FanovaImportanceEvaluator(seed=0))),
        ("Slice", lambda: vis.plot_slice(study, target=target, target_name=label)),
        ("Intermediate values", lambda: _intermediate(study)),
    ]
    return charts


def _target(index: int, count: int) -> tuple[Callable[[FrozenTrial], float] | None, str]:
    if count == 1:
        return None, "Objective Value"
    return (lambda t: t.values[index]), f"Objective {index}"


def _importances(study: optuna.Study, target: Any, label: str, evaluator: Any) -> Any:
    from optuna import visualization as vis

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        raise ValueError("needs at least 2 completed trials")
    return vis.plot_param_importances(study, evaluator=evaluator, target=target,
                                      target_name=label)


def _intermediate(study: optuna.Study) -> Any:
    from optuna import visualization as vis

    if not any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        return None
    return vis.plot_intermediate_values(study)


def _best(study: optuna.Study) -> dict[str, Any]:
    directions = [d.name.lower() for d in study.directions]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    data: dict[str, Any] = {"study": study.study_name, "directions": directions,
                            "completed_trials": len(complete)}
    if not complete:
        data["best"] = None
    elif len(directions) == 1:
        data["best"] = _trial(study.best_trial)
    else:
        data["pareto_front"] = [_trial(t) for t in study.best_trials]
    return data


def _trial(trial: FrozenTrial) -> dict[str, Any]:
    values = list(trial.values)
    return {
        "number": trial.number,
        ("value" if len(values) == 1 else "values"): values[0] if len(values) == 1 else values,
        "params": dict(trial.params),
        # The same configuration as Hydra overrides, to paste after a training command.
        "overrides": command_line([], trial.params),
    }


def _page(study: optuna.Study, sections: list[tuple[str, str]], skipped: dict[str, str],
          plotly_js: str) -> str:
    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    shown = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    best = _best(study)
    rows = [("study", study.study_name),
            ("directions", ", ".join(best["directions"])),
            ("trials", f"{len(trials)} ({shown or 'none'})")]
    if best.get("best"):
        rows.append(("best value", f"{best['best']['value']:.6g} (trial {best['best']['number']})"))
        rows += [(f"best {k}", _text(v)) for k, v in best["best"]["params"].items()]
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in rows)
    body = "".join(f'<section class="chart"><h2>{html.escape(t)}</h2>{div}</section>'
                   for t, div in sections)
    notes = "".join(f"<li>{html.escape(t)}: {html.escape(why)}</li>"
                    for t, why in skipped.items())
    title = html.escape(f"tunepilot report: {study.study_name}")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{_STYLE}</style>"
        f"<script>{plotly_js}</script></head><body><h1>{title}</h1>"
        f"<table class='summary'>{table}</table>{body}"
        + (f"<h2>Not shown</h2><ul class='skipped'>{notes}</ul>" if notes else "")
        + "</body></html>\n"
    )


def _text(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}"
    "table.summary{border-collapse:collapse;margin-bottom:2rem}"
    "table.summary th{text-align:left;padding:.2rem 1rem .2rem 0;font-weight:600}"
    "section.chart{margin-bottom:2rem}"
)
