"""What every measurement of the report shares: interleaved timing, the machine, the matmul peak.

Contenders are timed side by side in one process, their repetitions interleaved (round r runs
every contender once, in rotating order), so load from other processes on a shared machine hits
them alike; the results are medians of k rounds and medians of per-round ratios. The fp32
matmul peak (``jit(a @ b)``, 2 n^3 FLOP a call) is what the MFU figures divide by.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

# --------------------------------------------------------------------------- timing


def block(x: Any) -> Any:
    return jax.block_until_ready(x)


def interleaved(
    fns: Mapping[str, Callable[[], Any]], rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Wall seconds of each callable, ``rounds`` times, interleaved: each round calls every
    callable once, the order rotating from round to round, so load on a shared machine hits
    all contenders alike. ``warmup`` untimed rounds first (compilation, caches)."""
    names = list(fns)
    for _ in range(warmup):
        for k in names:
            block(fns[k]())
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for k in order:
            t0 = time.perf_counter()
            block(fns[k]())
            times[k].append(time.perf_counter() - t0)
    return times


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over rounds of a_r / b_r: robust to load that changes between rounds."""
    return median([x / y for x, y in zip(a, b, strict=True)])


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    dev = jax.devices()[0]
    return {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "platform": dev.platform,
        "device_kind": dev.device_kind,
        "devices": [str(d) for d in jax.devices()],
        "device_count": jax.device_count(),
        "jax_version": jax.__version__,
        "python": platform.python_version(),
        "torch_version": _torch_version(),
        # other processes' load when the run started: on a shared machine it explains the
        # spread of the timings (compare the identity A/A row)
        "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return str(torch.__version__)


def device_slug(info: Mapping[str, Any] | None = None) -> str:
    """E.g. ``cpu-amd-epyc-2c`` or ``gpu-nvidia-h100-80gb-hbm3``: the results folder name."""
    info = info or machine()
    if info["platform"] == "cpu":
        name = f"cpu-{info['cpu_model']}-{info['cpu_cores']}c"
    else:
        name = f"{info['platform']}-{info['device_kind']}"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# --------------------------------------------------------------------------- matmul peak


#: Extra matmul peaks a setting may ask for: (dtype, precision). "float32" at the default
#: precision (the peak above) may use TF32 tensor cores on a GPU, as the harness's matmuls do;
#: "float32_highest" forces full fp32; "bfloat16" is the tensor cores' headline rate.
MATMUL_VARIANTS = {
    "bfloat16": (jnp.bfloat16, None),
    "float32_highest": (jnp.float32, "highest"),
}


def matmul_peak(
    sizes: Sequence[int] = (1024, 2048),
    rounds: int = 5,
    dtype: Any = jnp.float32,
    precision: str | None = None,
) -> dict[str, Any]:
    """FLOP/s of ``jit(a @ b)`` for square n x n matrices of ``dtype`` (2 n^3 FLOPs a call);
    ``precision`` as ``jnp.matmul``'s (None: the backend's default)."""
    f = jax.jit(lambda a, b: jnp.matmul(a, b, precision=precision))
    out: dict[str, Any] = {}
    for n in sizes:
        a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32).astype(dtype)
        b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32).astype(dtype)
        t = interleaved({"mm": functools.partial(f, a, b)}, rounds)["mm"]
        out[str(n)] = 2 * n**3 / median(t)
    out["peak"] = max(v for k, v in out.items() if k != "peak")
    return out
