"""HEBO behind a pipe, run by the interpreter of HEBO's own virtualenv.

HEBO 0.3.6 requires numpy<1.25, which cannot share an environment with the rest of
tunepilot, so the benchmark runs it in a separate process: ``_hebo.HeboSampler`` starts
``<hebo python> _hebo_worker.py`` and speaks one JSON object per line.

- first line in: ``{"space": [HEBO parameter dicts], "seed": int}``; out: ``{"ready": true, "versions": {...}}``
- ``{"op": "observe", "params": {...}, "value": float}`` (to minimize); out: ``{"ok": true}``
- ``{"op": "suggest"}``; out: ``{"params": {...}}``
- end of input: the worker exits.

Any failure is answered as ``{"error": "<traceback>"}`` and the worker exits with status 1.
This file imports nothing from tunepilot or the benchmark: only the standard library,
numpy, pandas, torch and hebo, which that virtualenv has.
"""

from __future__ import annotations

import json
import sys
import traceback
from importlib.metadata import version
from typing import Any


def _plain(value: Any) -> Any:
    """A JSON-ready Python value from a numpy scalar."""
    return value.item() if hasattr(value, "item") else value


def main() -> int:
    import numpy as np
    import pandas as pd
    import torch
    from hebo.design_space.design_space import DesignSpace
    from hebo.optimizers.hebo import HEBO
    from pymoo.config import Config

    Config.warnings["not_compiled"] = False  # pymoo 0.6.0 ships no compiled wheels for 3.11

    out = sys.stdout
    sys.stdout = sys.stderr  # anything HEBO prints must not corrupt the protocol

    def reply(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    try:
        header = json.loads(sys.stdin.readline())
        seed = int(header["seed"])
        np.random.seed(seed)
        torch.manual_seed(seed)
        space = DesignSpace().parse(header["space"])
        optimizer = HEBO(space, scramble_seed=seed)
        versions = {name: version(name) for name in ("HEBO", "numpy", "torch", "pandas")}
        reply({"ready": True, "versions": versions})
        for line in sys.stdin:
            message = json.loads(line)
            if message["op"] == "observe":
                frame = pd.DataFrame([message["params"]])
                optimizer.observe(frame, np.array([[float(message["value"])]]))
                reply({"ok": True})
            elif message["op"] == "suggest":
                row = optimizer.suggest(n_suggestions=1).iloc[0]
                reply({"params": {name: _plain(value) for name, value in row.items()}})
            else:
                raise ValueError(f"unknown op {message['op']!r}")
    except Exception:
        reply({"error": traceback.format_exc()})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
