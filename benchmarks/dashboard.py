"""Dashboard server time on a large sweep (5,000 runs) and a large study (5,000 trials).

    python -m benchmarks.dashboard [--runs 5000] [--repeats 7] [--db sqlite,postgres]
        [--postgres-url URL]
    python -m benchmarks.dashboard --report benchmarks/results/dashboard-....json

A sweep (random method, three parameters) is filled with ``--runs`` finished runs:
Optuna trials added with ``study.add_trials`` and the matching run rows (config,
summary, one logged metric row each) written in bulk, which is what agents leave
behind, only faster to build. A ``tunepilot server`` child process then serves the
dashboard, and each page and each JSON endpoint a page loads is requested
``--repeats`` times after a first request, which is reported apart (it fills the
caches: a study's finished trials, parameter importance). A study without a sweep,
as ``tunepilot run`` leaves, with as many trials, is measured the same way. Reported
per request: the server
time from the ``Server-Timing`` header the dashboard sets (request in to response
start, which for these responses is after the whole body is rendered) and the
client's wall time, as medians and maxima. The target is the sweep detail page
(``/ui/sweeps/{id}``) under 2 s of server time; the other tabs and endpoints are
reported beside it, slow ones included.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._common import machine as _machine
from benchmarks._common import measure_on_databases, write_result

RESULTS = Path(__file__).with_name("results")
TARGET_S = 2.0
CONFIG = {
    "method": "random", "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {
        "lr": {"min": 0.0001, "max": 0.1, "distribution": "log_uniform_values"},
        "layers": {"min": 1, "max": 8},
        "optimizer": {"values": ["adam", "sgd", "rmsprop"]},
    },
}


def build_sweep(url: str, db: str, runs: int) -> str:
    """A sweep with ``runs`` finished runs; returns its id."""
    import httpx
    import optuna

    from tunepilot.server._context import parse_config
    from tunepilot.server.db import Database, MetricRow, Run, Sweep, make_storage

    created = httpx.post(f"{url}/api/v1/sweeps", json={"config": CONFIG, "project": "bench",
                                                       "name": f"dashboard {runs} runs"},
                         timeout=60)
    created.raise_for_status()
    sweep_id, study_name = created.json()["id"], created.json()["study_name"]
    space = parse_config(CONFIG).space
    storage = make_storage(db)
    study = optuna.load_study(study_name=study_name, storage=storage)
    study.add_trials(_trials(runs))
    frozen = storage.get_all_trials(study._study_id, deepcopy=False)
    storage.engine.dispose()
    start = datetime(2026, 1, 1)
    rows, metrics, best = [], [], (float("inf"), "")
    for trial in frozen:
        run_id = f"r{trial.number:07d}"
        params = dict(trial.params)
        value = float(trial.value)  # type: ignore[arg-type]
        best = min(best, (value, run_id))
        created_at = start + timedelta(seconds=10 * trial.number)
        rows.append(Run(
            id=run_id, sweep_id=sweep_id, trial_id=trial._trial_id, trial_number=trial.number,
            attempt=1, state="finished", agent="bench:1", config=space.config_from_internal(
                params), params=params, summary={"loss": value}, metric_history=[value],
            n_rows=1, value=value, stop_requested=False, created_at=created_at,
            heartbeat_at=created_at + timedelta(seconds=9),
            finished_at=created_at + timedelta(seconds=9),
        ))
        metrics.append(MetricRow(run_id=run_id, step=0, data={"loss": value}))
    database = Database(db)
    with database.session() as session:
        session.add_all(rows)
        session.flush()
        session.add_all(metrics)
        sweep = session.get(Sweep, sweep_id)
        assert sweep is not None
        sweep.n_suggested, sweep.best_value, sweep.best_run_id = runs, best[0], best[1]
    database.dispose()
    return str(sweep_id)


def _trials(runs: int) -> list[Any]:
    """``runs`` finished trials over the sweep's space, seeded."""
    import random

    import optuna

    from tunepilot.server._context import parse_config

    space = parse_config(CONFIG).space
    distributions = space.distributions()
    rng = random.Random(0)
    trials = []
    for _ in range(runs):
        params = {name: _draw(rng, dist) for name, dist in distributions.items()}
        config = space.config_from_internal(params)
        loss = abs(config["lr"] - 0.01) * 10 + config["layers"] / 100 + rng.random() * 0.1
        trials.append(optuna.trial.create_trial(params=params, distributions=distributions,
                                                value=loss))
    return trials


def build_study(db: str, runs: int) -> int:
    """A study without a sweep (as ``tunepilot run`` leaves) with ``runs`` trials; its id."""
    import optuna

    from tunepilot.server.db import make_storage

    storage = make_storage(db)
    study = optuna.create_study(study_name=f"bench-study-{runs}-{time.time_ns()}", storage=storage)
    study.add_trials(_trials(runs))
    storage.engine.dispose()
    return int(study._study_id)


def _draw(rng: Any, dist: Any) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(dist, CategoricalDistribution):
        return rng.choice(dist.choices)
    if isinstance(dist, IntDistribution):
        return rng.randint(dist.low, dist.high)
    assert isinstance(dist, FloatDistribution)
    if dist.log:
        import math

        return math.exp(rng.uniform(math.log(dist.low), math.log(dist.high)))
    return rng.uniform(dist.low, dist.high)


def measure(url: str, paths: dict[str, str], repeats: int) -> dict[str, Any]:
    """Server and wall milliseconds of each path, ``repeats`` times after a warm-up."""
    import httpx

    out: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=300) as client:
        for name, path in paths.items():
            server, wall, sizes = [], [], []
            first = None
            for attempt in range(repeats + 1):
                start = time.perf_counter()
                answer = client.get(path)
                elapsed = (time.perf_counter() - start) * 1000
                answer.raise_for_status()
                timing = float(answer.headers["server-timing"].split("dur=")[1])
                if attempt == 0:
                    first = timing  # warm-up: first study load, template compile, cold caches
                    continue
                server.append(timing)
                wall.append(elapsed)
                sizes.append(len(answer.content))
            out[name] = {
                "path": path, "first_server_ms": first, "server_ms": server, "wall_ms": wall,
                "bytes": sizes[-1],
                "server_median_ms": statistics.median(server), "server_max_ms": max(server),
                "wall_median_ms": statistics.median(wall),
            }
            print(f"{name:<28} first {first:8.1f} ms, then {out[name]['server_median_ms']:8.1f} ms "
                  f"(max {out[name]['server_max_ms']:.1f}), wall {out[name]['wall_median_ms']:8.1f} ms, "
                  f"{sizes[-1] / 1024:.0f} KiB", file=sys.stderr)
    return out


def bench_database(kind: str, db: str, args: argparse.Namespace) -> dict[str, Any]:
    import optuna

    from tunepilot.server.db import upgrade_database
    from tunepilot.testing import SweepServer

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    upgrade_database(db)
    with SweepServer(db, process=True, reaper=False) as server:
        start = time.perf_counter()
        sweep_id = build_sweep(server.url, db, args.runs)
        built_s = time.perf_counter() - start
        print(f"{kind}: built a sweep of {args.runs} runs in {built_s:.1f} s", file=sys.stderr)
        start = time.perf_counter()
        study_id = build_study(db, args.runs)
        print(f"{kind}: built a study of {args.runs} trials in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)
        base, api = f"/ui/sweeps/{sweep_id}", f"/ui/api/sweeps/{sweep_id}"
        study, study_api = f"/ui/studies/{study_id}", f"/ui/api/studies/{study_id}"
        paths = {
            "detail page (overview)": base,
            "runs tab (page 1)": f"{base}?tab=runs",
            "runs tab by value, desc": f"{base}?tab=runs&sort=value&order=desc",
            "runs tab, last page": f"{base}?tab=runs&page={max(1, -(-args.runs // 100))}",
            "best tab": f"{base}?tab=best",
            "parallel tab": f"{base}?tab=parallel",
            "sweeps list": "/ui/sweeps",
            "live JSON (polled)": f"{api}/live",
            "history JSON": f"{api}/history",
            "parallel JSON": f"{api}/parallel",
            "importance JSON": f"{api}/importance",
            "study page (overview)": study,
            "study trials tab (page 1)": f"{study}?tab=runs",
            "study live JSON (polled)": f"{study_api}/live",
            "study history JSON": f"{study_api}/history",
            "study parallel JSON": f"{study_api}/parallel",
            "study importance JSON": f"{study_api}/importance",
        }
        timings = measure(server.url, paths, args.repeats)
    detail = timings["detail page (overview)"]["server_median_ms"] / 1000
    return {"database": kind, "runs": args.runs, "sweep_id": sweep_id, "build_s": built_s,
            "timings": timings, "detail_page_server_s": detail,
            "detail_page_under_target": detail < TARGET_S}


def machine(postgres_url: str | None) -> dict[str, Any]:
    return _machine(["tunepilot", "optuna", "sqlalchemy", "fastapi", "uvicorn", "jinja2", "plotly"],
                    postgres_url)


def report(path: Path) -> str:
    """A Markdown table of a result file (for benchmarks/README.md)."""
    data = json.loads(path.read_text())
    results = data["results"]
    header = "| request | " + " | ".join(
        f"{r['database']} server ms (first; then median / max)" for r in results) + " | size |"
    lines = [header, "|---|" + "---|" * len(results) + "---|"]
    for name in results[0]["timings"]:
        cells = []
        for r in results:
            t = r["timings"][name]
            first = f"{t['first_server_ms']:.0f}; " if t.get("first_server_ms") is not None else ""
            cells.append(f"{first}{t['server_median_ms']:.0f} / {t['server_max_ms']:.0f}")
        size = results[0]["timings"][name]["bytes"]
        shown = f"{size / 1024:.0f} KiB" if size >= 1024 else f"{size} B"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {shown} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="Print the table of a result file and exit.")
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get("TUNEPILOT_BENCH_POSTGRES_URL"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.report is not None:
        print(report(args.report))
        return args.report
    if args.runs < 1 or args.repeats < 1:
        parser.error("--runs and --repeats must be at least 1")
    kinds = [k for k in args.db.split(",") if k]
    results = measure_on_databases(parser, args, bench_database, "dashboard.db")
    path = write_result(args.out, "dashboard", {
        "benchmark": "dashboard",
        "command": shlex.join([sys.executable, "-m", "benchmarks.dashboard",
                               *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(args.postgres_url if "postgres" in kinds else None),
        "config": {"runs": args.runs, "repeats": args.repeats, "target_s": TARGET_S,
                   "sweep": CONFIG},
        "results": results,
    })
    for result in results:
        print(f"{result['database']}: detail page {result['detail_page_server_s'] * 1000:.0f} ms "
              f"server time (median of {args.repeats}); under {TARGET_S:g} s: "
              f"{result['detail_page_under_target']}")
    print(f"wrote {path}", file=sys.stderr)
    return path


if __name__ == "__main__":
    main()
