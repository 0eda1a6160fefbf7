"""Sweep server throughput and latency (BENCHMARKS.md §3), against plain Optuna.

    python -m benchmarks.sweep_server [--db sqlite,postgres] [--agents 1,4,16]
        [--trials 50] [--history 100,10000] [--repeats 3] [--log-behind 1000,100000]
        [--postgres-url URL]
    python -m benchmarks.sweep_server --report benchmarks/results/sweep-server-....json

Workload: N agent processes each run M trials of a trivial objective (random
sampling over two parameters). Through the server, a trial is what an SDK agent
does: ``suggest`` (a lease), ``log`` one metric row, ``finish``. The reference is
the same workload with plain Optuna (``study.ask()`` / ``study.tell()``, the
RandomSampler) in N processes on the same database. Reported per configuration:
completed trials per second (all workers started and waiting first, so process
start-up is excluded), and the latency of ``suggest`` (server) or ``ask``
(Optuna) at p50 and p99. Then, with 1 agent, the same latencies once the study
already holds 100 and 10,000 trials (added directly to the Optuna study), to
show how they grow. Medians over repeats; server and Optuna are measured side by
side in one run, and their ratio is reported.

Last, ``log`` behind other runs' rows (``--log-behind``): ``--trials`` runs each log
1,000 rows (long trainings), then another run's N rows are stored after them
(rows are stored directly in the database), and each of the first runs logs once
more, as a run does after a quiet spell (an evaluation). Every log reads the run's
last row, and for these runs it lies behind N newer rows; their log latency is
reported against the other run's own logs, whose last row is the newest. It should
not grow with N.

PostgreSQL comes from ``--postgres-url`` or ``TUNEPILOT_BENCH_POSTGRES_URL``; the
server's tables are migrated there, nothing is dropped. The JSON file in
``benchmarks/results/`` holds the machine, versions, command and raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import commit
from benchmarks._common import machine as _machine
from benchmarks._common import measure_on_databases, write_result

RESULTS = Path(__file__).with_name("results")
CONFIG = {"method": "random", "metric": {"name": "loss"},
          "parameters": {"x": {"min": -5.0, "max": 5.0}, "y": {"min": -5.0, "max": 5.0}}}

# One worker process. It prints "ready", waits for "go" on stdin, runs its trials,
# and prints one JSON line: per-trial latencies of the suggest/ask step, in seconds.
WORKER = r"""
import json, sys, time
mode, target, name, trials = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
latencies = []
if mode == "server":
    from tunepilot.sdk import Client
    client = Client(target)
    client.get(f"/sweeps/{name}")
else:
    import optuna
    from optuna.distributions import FloatDistribution
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from tunepilot.server.db import make_storage
    storage = make_storage(target)
    study = optuna.load_study(study_name=name, storage=storage,
                              sampler=optuna.samplers.RandomSampler())
    space = {"x": FloatDistribution(-5, 5), "y": FloatDistribution(-5, 5)}
print("ready", flush=True)
sys.stdin.readline()
for _ in range(trials):
    start = time.perf_counter()
    if mode == "server":
        lease = client.post(f"/sweeps/{name}/suggest", {"agent": "bench"})
        latencies.append(time.perf_counter() - start)
        x, y = lease["config"]["x"], lease["config"]["y"]
        client.post(f"/runs/{lease['run_id']}/log", {"rows": [{"metrics": {"loss": x * x + y}}]})
        client.post(f"/runs/{lease['run_id']}/finish", {"state": "finished"})
    else:
        trial = study.ask(space)
        latencies.append(time.perf_counter() - start)
        study.tell(trial, trial.params["x"] ** 2 + trial.params["y"])
print(json.dumps(latencies), flush=True)
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_workers(mode: str, target: str, name: str, agents: int, trials: int) -> dict[str, Any]:
    """Start the workers, release them at once, and time them to the last."""
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, mode, target, name, str(trials)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(agents)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    latencies: list[float] = []
    for worker in workers:
        out, _ = worker.communicate(timeout=3600)
        if worker.returncode != 0:
            raise RuntimeError(f"a {mode} worker failed with status {worker.returncode}")
        latencies.extend(json.loads(out.strip().splitlines()[-1]))
    wall = time.perf_counter() - start
    return {
        "wall_s": wall, "completed": agents * trials, "trials_per_s": agents * trials / wall,
        "latency_p50_ms": 1000 * _percentile(latencies, 0.5),
        "latency_p99_ms": 1000 * _percentile(latencies, 0.99),
        "latencies_ms": [round(1000 * x, 3) for x in latencies],
    }


def _new_sweep(url: str) -> tuple[str, str]:
    import httpx

    sweep = httpx.post(f"{url}/api/v1/sweeps", json={"config": CONFIG, "project": "bench"},
                       timeout=60).json()
    return sweep["id"], sweep["study_name"]


def _new_study(db: str) -> str:
    import optuna

    from tunepilot.server.db import make_storage

    storage = make_storage(db)
    name = f"bench-optuna-{time.time_ns()}"
    optuna.create_study(study_name=name, storage=storage)
    storage.engine.dispose()
    return name


def _prefill(db: str, study_name: str, n: int) -> None:
    import optuna
    from optuna.distributions import FloatDistribution

    from tunepilot.server.db import make_storage

    storage = make_storage(db)
    study = optuna.load_study(study_name=study_name, storage=storage)
    space = {"x": FloatDistribution(-5, 5), "y": FloatDistribution(-5, 5)}
    study.add_trials([
        optuna.trial.create_trial(params={"x": 0.1 * (i % 100) - 5, "y": 0.0},
                                  distributions=space, value=float(i))
        for i in range(n)
    ])
    storage.engine.dispose()


#: Rows each run of the log-behind case has logged before its quiet spell.
OWN_ROWS = 1_000


def _store_rows(db: str, counts: dict[str, int]) -> None:
    """Store ``counts[run]`` more metric rows of each run directly, as the server would have."""
    from sqlalchemy import insert, inspect, text

    from tunepilot.server.db._engine import Database
    from tunepilot.server.db._models import MetricRow

    database = Database(db)
    try:
        with database.session() as session:
            # (Servers before migration 0006 have no last_row_id: so that the same
            # benchmark measures them too, it is kept only where it exists.)
            keeps_last = "last_row_id" in {c["name"] for c in inspect(session.connection())
                                           .get_columns("tp_runs")}
            update = text(
                "UPDATE tp_runs SET n_rows = n_rows + :n"
                + (", last_row_id = (SELECT max(id) FROM tp_run_metrics WHERE run_id = :run)"
                   if keeps_last else "") + " WHERE id = :run"
            )
            for run_id, n in counts.items():
                start = session.execute(text("SELECT n_rows FROM tp_runs WHERE id = :run"),
                                        {"run": run_id}).scalar_one()
                for first in range(0, n, 20_000):
                    session.execute(insert(MetricRow), [
                        {"run_id": run_id, "step": start + i, "data": {"loss": 1.0}}
                        for i in range(first, min(n, first + 20_000))
                    ])
                session.execute(update, {"n": n, "run": run_id})
        if not database.sqlite:
            with database.session() as session:
                session.execute(text("ANALYZE tp_run_metrics"))
    finally:
        database.dispose()


def log_behind(db: str, behind: int, runs: int) -> dict[str, Any]:
    """Log latency of runs whose last row lies behind ``behind`` rows of another run."""
    from tunepilot.sdk import Client
    from tunepilot.server.db import upgrade_database
    from tunepilot.testing import SweepServer

    upgrade_database(db)
    # Heartbeats are not sent here: a long interval keeps the waiting runs leased.
    with SweepServer(db, process=True, heartbeat_interval=600.0) as server:
        client = Client(server.url)
        sweep_id, _ = _new_sweep(server.url)
        quiet = [client.post(f"/sweeps/{sweep_id}/suggest", {"agent": "bench"})["run_id"]
                 for _ in range(runs)]
        busy = client.post(f"/sweeps/{sweep_id}/suggest", {"agent": "bench"})["run_id"]
        for run_id in [*quiet, busy]:
            client.post(f"/runs/{run_id}/log", {"rows": [{"metrics": {"loss": 1.0}}]})
        # The quiet runs' rows first, then the busy run's, all behind them.
        _store_rows(db, {**{run_id: OWN_ROWS - 1 for run_id in quiet}, busy: behind})
        timed: dict[str, list[float]] = {"quiet": [], "busy": []}
        for run_id in quiet:  # each still behind the busy run's rows (and its logs)
            for name, target in (("quiet", run_id), ("busy", busy)):
                start = time.perf_counter()
                client.post(f"/runs/{target}/log", {"rows": [{"metrics": {"loss": 0.5}}]})
                timed[name].append(time.perf_counter() - start)
        client.close()
    return {"behind": behind, "runs": runs, "own_rows": OWN_ROWS, **{
        f"{name}_{stat}_ms": 1000 * _percentile(values, q)
        for name, values in timed.items() for stat, q in (("p50", 0.5), ("p99", 0.99))
    }, "latencies_ms": {name: [round(1000 * x, 3) for x in values]
                        for name, values in timed.items()}}


def bench_database(kind: str, db: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every configuration on one database, server and Optuna side by side."""
    import optuna

    from tunepilot.server.db import upgrade_database
    from tunepilot.testing import SweepServer

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    upgrade_database(db)
    out: dict[str, Any] = {"database": kind, "throughput": [], "history": []}
    with SweepServer(db, process=True) as server:
        for agents in args.agents:
            for repeat in range(args.repeats):
                sweep_id, _ = _new_sweep(server.url)
                served = run_workers("server", server.url, sweep_id, agents, args.trials)
                plain = run_workers("optuna", db, _new_study(db), agents, args.trials)
                out["throughput"].append({"agents": agents, "trials": args.trials,
                                          "repeat": repeat, "server": served, "optuna": plain})
                print(f"{kind} {agents} agents #{repeat}: server "
                      f"{served['trials_per_s']:.1f}/s p50 {served['latency_p50_ms']:.1f} ms; "
                      f"optuna {plain['trials_per_s']:.1f}/s p50 {plain['latency_p50_ms']:.1f} ms",
                      file=sys.stderr)
        for existing in args.history:
            sweep_id, study_name = _new_sweep(server.url)
            _prefill(db, study_name, existing)
            name = _new_study(db)
            _prefill(db, name, existing)
            for repeat in range(args.repeats):
                served = run_workers("server", server.url, sweep_id, 1, args.trials)
                plain = run_workers("optuna", db, name, 1, args.trials)
                out["history"].append({"existing": existing, "repeat": repeat,
                                       "server": served, "optuna": plain})
                print(f"{kind} at {existing} trials #{repeat}: suggest p50 "
                      f"{served['latency_p50_ms']:.1f} ms, ask p50 "
                      f"{plain['latency_p50_ms']:.1f} ms", file=sys.stderr)
    out["log_behind"] = []
    for behind in args.log_behind:
        entry = log_behind(db, behind, args.trials)
        out["log_behind"].append(entry)
        print(f"{kind} log behind {behind:,} rows: p50 {entry['quiet_p50_ms']:.1f} ms "
              f"(the newest run's {entry['busy_p50_ms']:.1f} ms)", file=sys.stderr)
    out["summary"] = summarize(out)
    return out


def summarize(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Medians over repeats for each configuration, and server/Optuna ratios."""
    rows = []
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for entry in result["throughput"]:
        groups.setdefault(("agents", entry["agents"]), []).append(entry)
    for entry in result["history"]:
        groups.setdefault(("existing", entry["existing"]), []).append(entry)
    for (kind, n), entries in groups.items():
        row: dict[str, Any] = {"database": result["database"], kind: n}
        for side in ("server", "optuna"):
            for metric in ("trials_per_s", "latency_p50_ms", "latency_p99_ms"):
                row[f"{side}_{metric}"] = statistics.median(e[side][metric] for e in entries)
        row["throughput_ratio"] = row["server_trials_per_s"] / row["optuna_trials_per_s"]
        rows.append(row)
    return rows


def machine(postgres_url: str | None) -> dict[str, Any]:
    """Where and with what the numbers were measured."""
    return _machine(["tunepilot", "optuna", "sqlalchemy", "fastapi", "uvicorn", "httpx", "psycopg"],
                    postgres_url)


def report(path: Path) -> str:
    """A Markdown table of a result file's medians (for benchmarks/README.md)."""
    data = json.loads(path.read_text())
    lines = [
        "| database | workload | server trials/s | Optuna trials/s | ratio "
        "| suggest p50 / p99 ms | ask p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ] if data["summary"] else []  # empty when only the log-behind case was run
    for row in data["summary"]:
        agents = f"{row.get('agents')} agent{'s' if row.get('agents') != 1 else ''}"
        workload = (f"{agents} × {data['config']['trials']} trials" if "agents" in row
                    else f"1 agent, {row['existing']:,} trials stored")
        lines.append(
            f"| {row['database']} | {workload} | {row['server_trials_per_s']:.1f} "
            f"| {row['optuna_trials_per_s']:.1f} | {row['throughput_ratio']:.2f} "
            f"| {row['server_latency_p50_ms']:.0f} / {row['server_latency_p99_ms']:.0f} "
            f"| {row['optuna_latency_p50_ms']:.0f} / {row['optuna_latency_p99_ms']:.0f} |"
        )
    behind = [(data_["database"], entry) for data_ in data["results"]
              for entry in data_.get("log_behind", [])]
    if behind:
        lines += [
            *([""] if lines else []),
            "| database | rows of another run stored after the run's last row (of 1,000) "
            "| log p50 / p99 ms | the other run's log p50 / p99 ms |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {kind} | {entry['behind']:,} | {entry['quiet_p50_ms']:.1f} / "
            f"{entry['quiet_p99_ms']:.1f} | {entry['busy_p50_ms']:.1f} / {entry['busy_p99_ms']:.1f} |"
            for kind, entry in behind
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="Print the table of a result file and exit.")
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--agents", default="1,4,16")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--history", default="100,10000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--log-behind", default="1000,100000",
                        help="Row counts for the log-behind-other-runs case ('' skips it).")
    parser.add_argument("--postgres-url", default=os.environ.get("TUNEPILOT_BENCH_POSTGRES_URL"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.report is not None:
        print(report(args.report))
        return args.report
    args.agents = [int(x) for x in args.agents.split(",") if x]
    args.history = [int(x) for x in args.history.split(",") if x]
    args.log_behind = [int(x) for x in args.log_behind.split(",") if x]
    kinds = [k for k in args.db.split(",") if k]
    results = measure_on_databases(parser, args, bench_database, "bench.db")
    path = write_result(args.out, "sweep-server", {
        "benchmark": "sweep_server",
        "command": shlex.join([sys.executable, "-m", "benchmarks.sweep_server", *(argv or sys.argv[1:])]),
        "machine": machine(args.postgres_url if "postgres" in kinds else None),
        "commit": commit("src", "benchmarks/sweep_server.py"),
        "config": {"agents": args.agents, "trials": args.trials, "history": args.history,
                   "repeats": args.repeats, "log_behind": args.log_behind, "sweep": CONFIG},
        "results": results,
        "summary": [row for r in results for row in r["summary"]],
    })
    for row in (row for r in results for row in r["summary"]):
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}))
    print(f"wrote {path}", file=sys.stderr)
    return path


if __name__ == "__main__":
    main()
