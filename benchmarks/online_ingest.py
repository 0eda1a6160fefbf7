"""Online optimizer ingest (BENCHMARKS.md §4): events/s, latency, exactly-once counts, memory.

    python -m benchmarks.online_ingest [--rate 20000] [--duration 60] [--batch 1000]
        [--senders 4] [--duplicates 0.01] [--out-of-order 0.01] [--step-interval 2]
    python -m benchmarks.online_ingest --report benchmarks/results/online-ingest-....json

A real ``tunepilot server`` (uvicorn, SQLite, one application with three variants)
runs as one process; its resident memory is read from /proc after start-up, while
idle. A load generator in a second process sends JSON batches to
``POST /api/v1/online/events`` over keep-alive connections from ``--senders``
threads, paced to ``--rate`` events/s (``--rate 0``: as fast as the server takes
them) for ``--duration`` seconds. It injects repeats (an event already sent, sent
again in a later batch) and out-of-order events (held back and sent with their
original, older timestamp a few batches later), and keeps the ground truth: how many
distinct events and how many repeats it sent. A third process polls the split
endpoint every 50 ms during the load.

Reported: events/s (distinct events the server counted over the generator's wall
time), request latency p50/p99/max per batch, the server's accepted / duplicate /
rejected counts against the ground truth (lost = distinct sent - accepted;
double-counted = accepted - distinct sent, both must be 0, and the optimizer's own
window counts must equal accepted), the decision step's duration p50/p99/max as the
server timed it under that load, the split endpoint's latency p50/p99 under load,
and the server's resident memory idle and at its peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")
APP = "bench"
VARIANTS = ["big", "mid", "small"]
CONFIG = f"""
models:
  big: {{input_per_mtok: 10.0, output_per_mtok: 30.0}}
  mid: {{input_per_mtok: 1.0, output_per_mtok: 4.0}}
  small: {{input_per_mtok: 0.3, output_per_mtok: 1.2}}
apps:
  {APP}:
    baseline: big
    variants:
      - {{id: big, model: big, temperature: 0.2}}
      - {{id: mid, model: mid, temperature: 0.2}}
      - {{id: small, model: small, temperature: 0.2}}
    constraints: {{p95_latency_ms: 4000}}
"""


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server at {url} did not become healthy in {timeout:.0f} s")


# -- the load generator (second process) --------------------------------------------------


def generate(args: argparse.Namespace) -> dict[str, Any]:
    """Send paced batches with repeats and out-of-order events; return the ground truth."""
    import httpx
    import orjson

    rng = random.Random(args.seed)
    url = f"{args.url}/api/v1/online/events"
    batches: queue.Queue[bytes | None] = queue.Queue(maxsize=4 * args.senders)
    latencies: list[float] = []
    failures: list[str] = []
    answers = {"accepted": 0, "duplicates": 0, "rejected": 0}
    lock = threading.Lock()

    def sender() -> None:
        with httpx.Client(timeout=60, headers={"content-type": "application/json"}) as http:
            while (body := batches.get()) is not None:
                start = time.perf_counter()
                response = http.post(url, content=body)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        failures.append(f"HTTP {response.status_code}: {response.text[:300]}")
                    else:
                        data = response.json()
                        for key in ("accepted", "duplicates"):
                            answers[key] += data[key]
                        answers["rejected"] += len(data["rejected"])

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(args.senders)]
    for thread in threads:
        thread.start()
    recent: deque[dict[str, Any]] = deque(maxlen=20_000)
    held: list[tuple[int, dict[str, Any]]] = []   # (batch number to send in, event)
    distinct = repeats = late = 0
    batch_no = 0
    start = time.perf_counter()
    end = start + args.duration
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if args.rate > 0:
            due = start + batch_no * args.batch / args.rate
            if due > now:
                time.sleep(due - now)
        events: list[dict[str, Any]] = []
        ready = [e for b, e in held if b <= batch_no]
        held = [(b, e) for b, e in held if b > batch_no]
        events.extend(ready)
        stamp = time.time()
        while len(events) < args.batch:
            roll = rng.random()
            if roll < args.duplicates and recent:
                events.append(rng.choice(recent))
                repeats += 1
                continue
            distinct += 1
            variant = VARIANTS[distinct % 3]
            event: dict[str, Any] = {
                "app": APP, "variant": variant, "event_id": f"ev-{distinct}",
                "timestamp": stamp, "latency_ms": 200.0 + (distinct % 997),
                "input_tokens": 300 + distinct % 500, "output_tokens": 50 + distinct % 200,
                "attributes": {"category": ("faq", "billing", "tech")[distinct % 3]},
            }
            if distinct % 10 == 0:
                event["quality"] = (distinct % 101) / 100
            if roll < args.duplicates + args.out_of_order:
                # Sent one to five batches later, with the timestamp it has now.
                held.append((batch_no + rng.randint(1, 5), event))
                late += 1
            else:
                events.append(event)
            recent.append(event)
        batches.put(orjson.dumps(events))
        batch_no += 1
    for _, event in held:
        batches.put(orjson.dumps([event]))
    for _ in threads:
        batches.put(None)
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return {
        "distinct_sent": distinct, "repeats_sent": repeats, "out_of_order_sent": late,
        "requests": len(latencies), "failures": failures[:10], "failed_requests": len(failures),
        "wall_s": wall, "answers": answers,
        "latency_p50_ms": 1000 * (_percentile(latencies, 0.5) or 0),
        "latency_p99_ms": 1000 * (_percentile(latencies, 0.99) or 0),
        "latency_max_ms": 1000 * max(latencies, default=0.0),
    }


def poll_split(args: argparse.Namespace) -> dict[str, Any]:
    """GET the split every 50 ms until stdin closes; latencies in ms."""
    import httpx

    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    latencies: list[float] = []
    with httpx.Client(timeout=30) as http:
        while not stop.is_set():
            start = time.perf_counter()
            response = http.get(f"{args.url}/api/v1/online/apps/{APP}/split")
            latencies.append(1000 * (time.perf_counter() - start))
            if response.status_code != 200:
                raise RuntimeError(f"split: HTTP {response.status_code}")
            stop.wait(0.05)
    return {"requests": len(latencies), "p50_ms": _percentile(latencies, 0.5),
            "p99_ms": _percentile(latencies, 0.99), "max_ms": max(latencies, default=None)}


# -- the orchestration -----------------------------------------------------------------------


def _machine() -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for name in ("tunepilot", "fastapi", "uvicorn", "pydantic", "orjson", "httpx", "uvloop",
                 "httptools"):
        try:
            versions[name] = version(name)
        except Exception:  # noqa: BLE001 - optional packages are reported as missing
            versions[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu, "cpus": os.cpu_count(), "load_avg_at_start": list(os.getloadavg()),
            "versions": versions}


def _child(mode: str, args: argparse.Namespace, url: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "benchmarks.online_ingest", f"--{mode}", "--url", url,
               "--rate", str(args.rate), "--duration", str(args.duration), "--batch",
               str(args.batch), "--senders", str(args.senders), "--duplicates",
               str(args.duplicates), "--out-of-order", str(args.out_of_order), "--seed",
               str(args.seed)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    machine = _machine()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "online.yaml"
        config.write_text(CONFIG)
        env = dict(os.environ, TUNEPILOT_ONLINE_CONFIG=str(config),
                   TUNEPILOT_ONLINE_STEP_INTERVAL=str(args.step_interval))
        env.pop("TUNEPILOT_TOKEN", None)
        server = subprocess.Popen(
            [sys.executable, "-c", "from tunepilot.cli import main; main()", "server",
             "--db", f"sqlite:///{tmp}/bench.db", "--port", str(port), "--migrate"],
            env=env,
        )
        try:
            _wait_healthy(url)
            time.sleep(args.idle)  # start-up done, a few decision steps, no traffic
            idle_rss = _rss_mb(server.pid)
            modules = httpx.get(f"{url}/api/v1/online/stats").json()
            cpu_before = _cpu_s(server.pid)
            poller = _child("poll-split", args, url)
            generator = _child("generate", args, url)
            out, _ = generator.communicate(timeout=args.duration + 600)
            server_cpu = _cpu_s(server.pid) - cpu_before
            if generator.returncode != 0:
                raise RuntimeError(f"the load generator failed ({generator.returncode})")
            load = json.loads(out.strip().splitlines()[-1])
            assert poller.stdin is not None
            poller.stdin.close()
            split_out = poller.stdout.read() if poller.stdout else ""
            poller.wait(timeout=60)
            split = json.loads(split_out.strip().splitlines()[-1])
            time.sleep(2 * args.step_interval)  # a step or two after the load, timed too
            stats = httpx.get(f"{url}/api/v1/online/stats", timeout=60).json()
            app = httpx.get(f"{url}/api/v1/online/apps/{APP}", timeout=60).json()
            peak_rss = _rss_mb(server.pid, "VmHWM")
            machine["load_avg_at_end"] = list(os.getloadavg())
            after_rss = _rss_mb(server.pid)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    events = stats["events"]
    window_calls = sum(v.get("calls", 0) for seg in app["windows"]["segments"].values()
                       for v in seg.values())
    accepted = events["accepted"]
    distinct = load["distinct_sent"]
    return {
        "machine": machine,
        "command": "python -m benchmarks.online_ingest " + " ".join(
            shlex.quote(a) for a in sys.argv[1:]),
        "parameters": {k: getattr(args, k) for k in ("rate", "duration", "batch", "senders",
                                                      "duplicates", "out_of_order", "seed",
                                                      "step_interval", "idle")},
        "load": load,
        "server_counts": {k: events[k] for k in ("accepted", "duplicates", "rejected",
                                                 "rejected_by_reason", "rejected_batches")},
        "window_calls": window_calls,
        "summary": {
            "events_per_s": accepted / load["wall_s"],
            # CPU the server used during the load: what bounds it on a shared machine.
            "server_cpu_s": server_cpu,
            "server_cpu_share": server_cpu / load["wall_s"],
            "server_cpu_us_per_event": 1e6 * server_cpu / max(1, distinct + load["repeats_sent"]),
            "events_per_server_cpu_s": (distinct + load["repeats_sent"]) / max(server_cpu, 1e-9),
            "offered_events_per_s": (distinct + load["repeats_sent"]) / load["wall_s"],
            "batch": args.batch,
            "ingest_latency_p50_ms": load["latency_p50_ms"],
            "ingest_latency_p99_ms": load["latency_p99_ms"],
            "lost": max(0, distinct - accepted),
            "double_counted": max(0, accepted - distinct),
            "repeats_recognised": events["duplicates"],
            "repeats_sent": load["repeats_sent"],
            "out_of_order_sent": load["out_of_order_sent"],
            "windows_match": window_calls == accepted,
            "step_p50_ms": stats["steps"]["p50_ms"],
            "step_p99_ms": stats["steps"]["p99_ms"],
            "step_max_ms": stats["steps"]["max_ms"],
            "steps": stats["steps"]["count"],
            "split_p50_ms": split["p50_ms"],
            "split_p99_ms": split["p99_ms"],
            "split_requests": split["requests"],
            "split_server_p50_ms": stats["split"]["p50_ms"],
            "split_server_p99_ms": stats["split"]["p99_ms"],
            "idle_rss_mb": idle_rss,
            "peak_rss_mb": peak_rss,
            "after_rss_mb": after_rss,
            "stats_at_idle": modules["events"]["accepted"],
        },
    }


def report(path: Path) -> str:
    data = json.loads(path.read_text())
    s = data["summary"]
    rows = [
        ("events/s counted (distinct, over the generator's wall time)", f"{s['events_per_s']:,.0f}"),
        ("offered events/s (with repeats)", f"{s['offered_events_per_s']:,.0f}"),
        ("server CPU during the load (share of one core) / per event",
         f"{s['server_cpu_share']:.2f} / {s['server_cpu_us_per_event']:.1f} µs"),
        ("events per second of server CPU (one core's capacity)",
         f"{s['events_per_server_cpu_s']:,.0f}"),
        (f"ingest latency per batch of {s['batch']} p50 / p99",
         f"{s['ingest_latency_p50_ms']:.1f} / {s['ingest_latency_p99_ms']:.1f} ms"),
        ("lost / double-counted", f"{s['lost']} / {s['double_counted']}"),
        ("repeats sent / recognised", f"{s['repeats_sent']:,} / {s['repeats_recognised']:,}"),
        ("out-of-order events sent", f"{s['out_of_order_sent']:,}"),
        ("optimizer window counts equal accepted", str(s["windows_match"])),
        ("decision step p50 / p99 / max (under load)",
         f"{s['step_p50_ms']:.1f} / {s['step_p99_ms']:.1f} / {s['step_max_ms']:.1f} ms "
         f"({s['steps']} steps)"),
        ("split endpoint p50 / p99 (under load)",
         f"{s['split_p50_ms']:.1f} / {s['split_p99_ms']:.1f} ms ({s['split_requests']} requests)"),
        ("split computed in the server p50 / p99",
         f"{s['split_server_p50_ms']:.3f} / {s['split_server_p99_ms']:.3f} ms"),
        ("server RSS idle / peak", f"{s['idle_rss_mb']:.0f} / {s['peak_rss_mb']:.0f} MB"),
    ]
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20_000.0,
                        help="events/s offered (0: as fast as the server takes them)")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--duplicates", type=float, default=0.01)
    parser.add_argument("--out-of-order", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step-interval", type=float, default=2.0)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before the RSS reading")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--poll-split", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report:
        print(report(args.report))
        return
    if args.generate:
        print(json.dumps(generate(args)), flush=True)
        return
    if args.poll_split:
        print(json.dumps(poll_split(args)), flush=True)
        return
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"online-ingest-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(report(path))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
