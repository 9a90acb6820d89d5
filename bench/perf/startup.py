"""Start-up: the wall time of a whole ``python -m bench sweep`` with cold and warm disk caches.

The README's main job (``bench/configs/quick.toml``) is run in fresh processes with a fresh
cache root (``XDG_CACHE_HOME``, so the generated data set and JAX's persistent compilation
cache start empty): the first run generates the data and compiles every group, the second
loads both from disk, a third with ``ACTIVATIONS_BENCH_NO_DISK_CACHE=1`` compiles again. Each
run writes to its own output directory, so every run trains every configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cache import CACHE_OFF_ENV


def _sweep(config: str, sets: Sequence[str], out: Path, env: dict[str, str]) -> float:
    cmd = [sys.executable, "-m", "bench", "sweep", config, "--out", str(out), "--quiet"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def measure(config: str, sets: Sequence[str] = ()) -> dict[str, Any]:
    """Seconds of the first (cold caches), second (warm) and cache-off runs of one sweep."""
    with tempfile.TemporaryDirectory(prefix="perf-startup-") as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
        env.pop(CACHE_OFF_ENV, None)
        env["XDG_CACHE_HOME"] = str(root / "cache")
        first = _sweep(config, sets, root / "first", env)
        second = _sweep(config, sets, root / "second", env)
        entries = sum(
            1 for p in (root / "cache" / "activations-bench" / "jax").rglob("*") if p.is_file()
        )
        off = _sweep(config, sets, root / "off", env | {CACHE_OFF_ENV: "1"})
    return {
        "config": config,
        "sets": list(sets),
        "first_s": first,
        "second_s": second,
        "cache_off_s": off,
        "compilation_cache_files": entries,
        "second_over_first": second / first,
    }
