"""Online optimizer benchmark: the cost-reduction simulation over shipped worlds and seeds.

Runs ``tunepilot online simulate`` for each world (in separate processes with
``--jobs``) and writes ``benchmarks/results/online-sim-<stamp>.json`` with the
command, machine, versions, seeds, per-world summaries and per-seed raw numbers.

    python -m benchmarks.online --worlds default,aa,cheap_hard,drift,price,mix,zero --seeds 20 --jobs 2
    python -m benchmarks.online --report benchmarks/results/online-sim-....json

Evaluation seeds are 1..N. The policy values in the worlds' ``app.policy`` were
chosen on tuning seeds 1001-1003 only (``--first-seed 1001``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")


def _one(world: str, seed: int, direct: bool) -> dict[str, Any]:
    from tunepilot.online._simulator import simulate_seed
    from tunepilot.online._world import load_world

    return asdict(simulate_seed(load_world(world), seed, api=not direct))


def machine() -> dict[str, Any]:
    """Where and with what the numbers were measured (the git commit included)."""
    import subprocess

    packages = ["tunepilot", "numpy", "scipy", "ddsketch", "optuna", "fastapi", "httpx", "pydantic"]
    root = Path(__file__).resolve().parents[1]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "src/tunepilot/online"], cwd=root,
                           capture_output=True, text=True).stdout.strip()
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "versions": {p: version(p) for p in packages},
            "commit": commit or None, "online_code_modified": bool(dirty)}


def run(worlds: list[str], seeds: list[int], *, jobs: int, direct: bool) -> dict[str, Any]:
    from tunepilot.online._simulator import SeedResult, summarize
    from tunepilot.online._world import load_world

    out: dict[str, Any] = {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {(w, s): pool.submit(_one, w, s, direct) for w in worlds for s in seeds}
        for world in worlds:
            raw = [futures[(world, s)].result() for s in seeds]
            results = [SeedResult(**r) for r in raw]
            summary = summarize(load_world(world), results)
            out[world] = {"summary": summary, "per_seed": raw}
            keys = ("cost_reduction", "oracle_capture", "quality_delta_lower95",
                    "p99_latency_within_budget", "rollbacks", "seeds_with_promotion")
            print(world, json.dumps({k: summary[k] for k in keys}), file=sys.stderr)
    return out


def report(path: Path) -> str:
    """Markdown tables of a result file (for benchmarks/README.md)."""
    data = json.loads(path.read_text())
    lines = [
        "| world | cost saved | oracle saves | capture | best single | random @ same cost, Δq | "
        "Δquality (points) | lower 95% | p99 ms (budget) | promotions / rollbacks |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for world, entry in data["worlds"].items():
        s = entry["summary"]
        capture = f"{s['oracle_capture']:.0%}" if s["oracle_capture"] is not None else "n/a"
        lines.append(
            f"| {world} | {s['cost_reduction']:.1%} | {s['oracle_reduction']:.1%} | {capture} "
            f"| {s['best_single_reduction']:.1%} "
            f"| {s['quality_delta_points_by_baseline']['random_matched']:+.2f} "
            f"| {s['quality_delta_points']:+.2f} | {s['quality_delta_lower95']:+.2f} "
            f"| {s['p99_latency_ms']:.0f} ({s['p99_latency_budget_ms']:.0f}) "
            f"| {sum(s['promotions_per_seed'])} / {s['rollbacks']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="Print the tables of a result file and exit.")
    parser.add_argument("--worlds", default="default,aa,cheap_hard,drift,price,mix,zero")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--direct", action="store_true",
                        help="Call ingest directly instead of the collector API.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.report is not None:
        print(report(args.report))
        return args.report
    worlds = [w for w in args.worlds.split(",") if w]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    started = datetime.now(timezone.utc)
    worlds_out = run(worlds, seeds, jobs=args.jobs, direct=args.direct)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"online-sim-{stamp}.json"
    path.write_text(json.dumps({
        "benchmark": "online_simulation",
        "command": shlex.join([sys.executable, "-m", "benchmarks.online", *(argv or sys.argv[1:])]),
        "machine": machine(),
        "started": started.isoformat(),
        "path": "direct ingest" if args.direct else "collector API (in-process ASGI)",
        "seeds": seeds,
        "worlds": worlds_out,
    }, indent=1, default=float))
    print(f"wrote {path}", file=sys.stderr)
    return path


if __name__ == "__main__":
    main()
