"""What the benchmarks share: the databases to measure on, the machine record, the commit."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any


def database_urls(
    parser: argparse.ArgumentParser, kinds: str, postgres_url: str | None, folder: str, name: str
) -> list[tuple[str, str]]:
    """``(kind, url)`` for each of ``--db``'s comma-separated kinds; a SQLite file in ``folder``.

    Refuses (through ``parser``) an unknown kind, or PostgreSQL without a URL.
    """
    from tunepilot.server._settings import normalize_db_url

    out = []
    for kind in (k for k in kinds.split(",") if k):
        if kind == "sqlite":
            out.append((kind, f"sqlite:///{folder}/{name}"))
        elif kind == "postgres":
            if not postgres_url:
                parser.error("--db postgres needs --postgres-url or TUNEPILOT_BENCH_POSTGRES_URL")
            out.append((kind, normalize_db_url(postgres_url)))
        else:
            parser.error(f"--db takes sqlite and/or postgres, not {kind!r}")
    return out


def machine(packages: list[str], postgres_url: str | None) -> dict[str, Any]:
    """Where and with what the numbers were measured (the PostgreSQL server's too, if used)."""
    info: dict[str, Any] = {
        "platform": platform.platform(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "versions": {p: version(p) for p in packages},
    }
    if postgres_url:
        from sqlalchemy import create_engine, text

        from tunepilot.server._settings import normalize_db_url

        engine = create_engine(normalize_db_url(postgres_url))
        with engine.connect() as connection:
            info["postgres"] = connection.execute(text("SHOW server_version")).scalar()
            info["postgres_synchronous_commit"] = connection.execute(
                text("SHOW synchronous_commit")).scalar()
        engine.dispose()
    return info


def measure_on_databases(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    bench: Callable[[str, str, argparse.Namespace], dict[str, Any]],
    filename: str,
) -> list[dict[str, Any]]:
    """Run ``bench(kind, url, args)`` on each database of ``--db`` (SQLite in a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="tunepilot-bench-") as tmp:
        return [bench(kind, db, args)
                for kind, db in database_urls(parser, args.db, args.postgres_url, tmp, filename)]


def write_result(folder: Path, benchmark: str, record: dict[str, Any]) -> Path:
    """Write ``record`` as ``<benchmark>-<UTC stamp>.json`` under ``folder``; return the path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{benchmark}-{stamp}.json"
    path.write_text(json.dumps(record, indent=1))
    return path


def commit(*paths: str) -> str | None:
    """The checkout's commit, with ``+dirty`` when tracked files under ``paths`` differ from it."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", *paths],
                               cwd=root, check=False).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout
    return head + ("+dirty" if dirty else "")
