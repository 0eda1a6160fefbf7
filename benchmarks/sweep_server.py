"""Sweep server throughput and latency (BENCHMARKS.md §3), against plain Optuna.

    python -m benchmarks.sweep_server [--db sqlite,postgres] [--agents 1,4,16]
        [--trials 50] [--history 100,10000] [--repeats 3] [--postgres-url URL]
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
    ]
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
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="Print the table of a result file and exit.")
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--agents", default="1,4,16")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--history", default="100,10000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres-url", default=os.environ.get("TUNEPILOT_BENCH_POSTGRES_URL"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.report is not None:
        print(report(args.report))
        return args.report
    args.agents = [int(x) for x in args.agents.split(",") if x]
    args.history = [int(x) for x in args.history.split(",") if x]
    kinds = [k for k in args.db.split(",") if k]
    results = measure_on_databases(parser, args, bench_database, "bench.db")
    path = write_result(args.out, "sweep-server", {
        "benchmark": "sweep_server",
        "command": shlex.join([sys.executable, "-m", "benchmarks.sweep_server", *(argv or sys.argv[1:])]),
        "machine": machine(args.postgres_url if "postgres" in kinds else None),
        "config": {"agents": args.agents, "trials": args.trials, "history": args.history,
                   "repeats": args.repeats, "sweep": CONFIG},
        "results": results,
        "summary": [row for r in results for row in r["summary"]],
    })
    for row in (row for r in results for row in r["summary"]):
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}))
    print(f"wrote {path}", file=sys.stderr)
    return path


if __name__ == "__main__":
    main()
